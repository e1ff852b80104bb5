/**
 * urql (@urql/core 6 + @urql/exchange-auth) against authgraph, with urql's default fetch
 * options: queries go as GET, which authgraph's CSRF rule lets through. The access token goes in
 * the Authorization header; an EXPIRED answer refreshes once and retries; REVOKED (or
 * MALFORMED) ends the session without a refresh.
 */
import { cacheExchange, Client, fetchExchange, makeOperation, mapExchange, type Operation } from '@urql/core';
import { authExchange } from '@urql/exchange-auth';
import { createAuthSession, credentialsOf, unauthenticatedReason, type AuthSession, type AuthSessionOptions } from './auth-session.js';

/** The access token an operation was sent with (kept in its context by withBearer). */
const sentToken = (operation: Operation): string | null => operation.context.accessToken ?? null;

/**
 * The operation with its Authorization header set to this token, or removed when signed out: an
 * operation retried after a refresh still carries the header of its first attempt.
 */
function withBearer(operation: Operation, accessToken: string | null): Operation {
  const { fetchOptions } = operation.context;
  const options = (typeof fetchOptions === 'function' ? fetchOptions() : fetchOptions) ?? {};
  const { Authorization: _, ...headers } = (options.headers ?? {}) as Record<string, string>;
  if (accessToken) headers.Authorization = `Bearer ${accessToken}`;
  return makeOperation(operation.kind, operation, { ...operation.context, accessToken, fetchOptions: { ...options, headers } });
}

export function createUrqlClient(options: AuthSessionOptions): { client: Client; session: AuthSession } {
  const session = createAuthSession(options);
  let expiredToken: string | null = null;
  const client = new Client({
    url: options.url,
    fetchOptions: { credentials: credentialsOf(options) },
    exchanges: [
      cacheExchange,
      // Sees the final result, after authExchange's refresh and retry.
      mapExchange({
        onError(error, operation) {
          const reason = unauthenticatedReason(error.graphQLErrors);
          if (reason === 'REVOKED' || reason === 'MALFORMED') session.signOut(sentToken(operation));
        },
      }),
      authExchange(async () => ({
        addAuthToOperation: (operation) => withBearer(operation, session.accessToken()),
        didAuthError(error, operation) {
          if (unauthenticatedReason(error.graphQLErrors) !== 'EXPIRED') return false;
          expiredToken = sentToken(operation);
          return true;
        },
        // Called right after didAuthError said true (authExchange queues the operation meanwhile).
        refreshAuth: () => session.refresh(expiredToken),
      })),
      fetchExchange,
    ],
  });
  return { client, session };
}
