/**
 * A typed sign-in over the documents GraphQL Code Generator writes to ./gql/ (run
 * `npm run codegen:examples` first). The switch names every member of LoginResult: when the
 * schema gains one, the `never` assignment stops compiling until the new case is handled.
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import { LoginDocument, type LoginMutation } from './gql/graphql';

export type SignIn =
  // refreshToken is null when the server keeps it in an HttpOnly cookie (REFRESH_TOKEN_TRANSPORT=cookie).
  | { kind: 'signed-in'; accessToken: string; refreshToken: string | null; accessTokenExpiresAt: string; email: string }
  | { kind: 'retry-later'; seconds: number }
  // The account has a second factor: ask for a code, then call completeSignIn with the challenge.
  | { kind: 'second-factor'; challenge: string; methods: string[]; expiresIn: number }
  | { kind: 'refused'; code: string; message: string; field?: string };

/** What the login form does with each answer of `login`. */
export function toSignIn(result: LoginMutation['login']): SignIn {
  switch (result.__typename) {
    case 'AuthPayload':
      return {
        kind: 'signed-in',
        accessToken: result.accessToken,
        refreshToken: result.refreshToken,
        accessTokenExpiresAt: result.accessTokenExpiresAt,
        email: result.user.email,
      };
    case 'RateLimitedError':
      return { kind: 'retry-later', seconds: result.retryAfter };
    case 'SecondFactorRequired':
      return { kind: 'second-factor', challenge: result.challenge, methods: result.methods, expiresIn: result.expiresIn };
    case 'InputError':
      return { kind: 'refused', code: result.code, message: result.message, field: result.field };
    case 'InvalidCredentialsError':
    case 'AccountDisabledError':
    case 'EmailNotVerifiedError':
      return { kind: 'refused', code: result.code, message: result.message };
    default: {
      const unhandled: never = result;
      throw new Error(`unexpected login result: ${JSON.stringify(unhandled)}`);
    }
  }
}

/** POSTs one typed operation; the access token, when there is one, goes in the header. */
export async function request<Result, Variables>(
  url: string,
  document: TypedDocumentNode<Result, Variables>,
  variables: Variables,
  accessToken?: string,
): Promise<Result> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(accessToken ? { authorization: `Bearer ${accessToken}` } : {}) },
    body: JSON.stringify({ query: print(document), variables }),
  });
  const body = (await response.json()) as { data?: Result | null; errors?: { message: string }[] };
  if (!body.data) throw new Error(body.errors?.[0]?.message ?? `HTTP ${response.status}`);
  return body.data;
}

/** Signs in with email and password. */
export async function signIn(url: string, email: string, password: string): Promise<SignIn> {
  const data = await request(url, LoginDocument, { input: { email, password } });
  return toSignIn(data.login);
}
