/**
 * Apollo Client 4 against authgraph: the default InMemoryCache given authgraph's
 * possible-types.json (without it, the cache drops `... on Error { code message }`), the access
 * token set per request, an EXPIRED answer refreshed once and retried, REVOKED (or MALFORMED)
 * ending the session without a refresh.
 */
import { ApolloClient, ApolloLink, CombinedGraphQLErrors, HttpLink, InMemoryCache } from '@apollo/client';
import { SetContextLink } from '@apollo/client/link/context';
import { ErrorLink } from '@apollo/client/link/error';
import { from, switchMap } from 'rxjs';
import possibleTypes from '../../possible-types.json' with { type: 'json' };
import { createAuthSession, credentialsOf, unauthenticatedReason, type AuthSession, type AuthSessionOptions } from './auth-session.js';

export interface ApolloClientOptions extends AuthSessionOptions {
  /** Defaults to an InMemoryCache with authgraph's possibleTypes. */
  cache?: InMemoryCache;
}

export function createApolloClient(options: ApolloClientOptions): { client: ApolloClient; session: AuthSession } {
  const session = createAuthSession(options);
  const auth = new SetContextLink((context) => {
    const accessToken = session.accessToken();
    // Removed when signed out: an operation retried after a refresh still carries its first attempt's.
    const { authorization: _, ...headers } = (context.headers ?? {}) as Record<string, string>;
    if (accessToken) headers.authorization = `Bearer ${accessToken}`;
    return { accessToken, headers };
  });
  const authErrors = new ErrorLink(({ error, operation, forward }) => {
    if (!CombinedGraphQLErrors.is(error)) return;
    const { accessToken } = operation.getContext();
    const reason = unauthenticatedReason(error.errors);
    // Retried once (ErrorLink does not handle the retry's errors), through `auth`, which sets the new token.
    if (reason === 'EXPIRED') return from(session.refresh(accessToken)).pipe(switchMap(() => forward(operation)));
    if (reason === 'REVOKED' || reason === 'MALFORMED') session.signOut(accessToken);
  });
  const client = new ApolloClient({
    link: ApolloLink.from([authErrors, auth, new HttpLink({ uri: options.url, credentials: credentialsOf(options) })]),
    cache: options.cache ?? new InMemoryCache({ possibleTypes }),
  });
  return { client, session };
}
