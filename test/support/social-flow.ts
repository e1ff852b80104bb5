/**
 * Social sign-in as a frontend and a browser run it, for tests: the GraphQL operations, the
 * test clients of the providers, and start / at the provider / complete against any test app.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import type { TestApp } from './app.js';
import { browse, REDIRECT_URI, type GitHubUser, type ProviderUser, type TestGitHub, type TestOpenIdProvider } from './identity-providers.js';
import { uniqueEmail } from './operations.js';

/** Whatever sends GraphQL operations: a test app (yoga.fetch) or one served on a port. */
type Client = Pick<TestApp, 'gql'>;

export const CLIENT = { id: 'authgraph', secret: 'authgraph-test-client-secret-0123456789' };
export const INTRUDER = { id: 'intruder', secret: 'intruder-test-client-secret-0123456789' };
export const GITHUB_CLIENT = { id: 'gh-client', secret: 'gh-test-client-secret-0123456789' };

export const START = `mutation Start($provider: String!, $redirectUri: String!) {
  startSocialSignIn(provider: $provider, redirectUri: $redirectUri) {
    __typename ... on SocialSignInStart { authorizationUrl state } ... on InputError { field } ... on Error { code }
  }
}`;
export const COMPLETE = `mutation Complete($provider: String!, $code: String!, $state: String!, $iss: String) {
  completeSocialSignIn(provider: $provider, code: $code, state: $state, iss: $iss) {
    __typename
    ... on AuthPayload { accessToken user { id email emailVerified } }
    ... on SecondFactorRequired { challenge methods expiresIn passkeyOptions }
    ... on InputError { field }
    ... on Error { code }
  }
}`;
export const START_LINK = `mutation StartLink($provider: String!, $redirectUri: String!) {
  startIdentityLink(provider: $provider, redirectUri: $redirectUri) {
    __typename ... on SocialSignInStart { authorizationUrl state } ... on Error { code }
  }
}`;
export const COMPLETE_LINK = `mutation CompleteLink($provider: String!, $code: String!, $state: String!, $iss: String) {
  completeIdentityLink(provider: $provider, code: $code, state: $state, iss: $iss) {
    __typename ... on Identity { id provider subject email } ... on Error { code }
  }
}`;
export const UNLINK = `mutation Unlink($id: ID!) { unlinkIdentity(id: $id) }`;
export const MY_IDENTITIES = `query { me { id identities { id provider subject email } } }`;

/** The answer of every refused completion. */
export const FAILED = { __typename: 'SocialSignInError', code: 'SOCIAL_SIGN_IN_FAILED' };

/** SOCIAL_* for one OpenID Provider as `corp` (CLIENT), and GitHub's stand-in when given. */
export function socialEnv(issuer: string, gh?: TestGitHub): Record<string, string> {
  return {
    SOCIAL_PROVIDERS: gh ? 'corp,github' : 'corp',
    SOCIAL_REDIRECT_URIS: REDIRECT_URI,
    SOCIAL_CORP_CLIENT_ID: CLIENT.id,
    SOCIAL_CORP_CLIENT_SECRET: CLIENT.secret,
    SOCIAL_CORP_ISSUER: issuer,
    SOCIAL_CORP_NAME: 'Corp SSO',
    ...(gh
      ? {
          SOCIAL_GITHUB_CLIENT_ID: GITHUB_CLIENT.id,
          SOCIAL_GITHUB_CLIENT_SECRET: GITHUB_CLIENT.secret,
          SOCIAL_GITHUB_WEB_URL: gh.webUrl,
          SOCIAL_GITHUB_API_URL: gh.apiUrl,
        }
      : {}),
  };
}

/** A new user at the OpenID Provider, with a verified address no account has. */
export const oidcUser = (overrides: Partial<ProviderUser> = {}): ProviderUser => ({
  sub: `sub-${randomBytes(6).toString('hex')}`,
  email: uniqueEmail('oidc'),
  email_verified: true,
  name: 'Olivia Idp',
  ...overrides,
});

/** A new GitHub user whose primary address (the second) is verified. */
export function githubUser(overrides: Partial<GitHubUser> = {}): GitHubUser {
  const email = uniqueEmail('gh');
  return {
    id: Math.floor(Math.random() * 1e9),
    login: `octo${randomBytes(3).toString('hex')}`,
    name: 'Octo Cat',
    emails: [
      { email: uniqueEmail('gh-secondary'), primary: false, verified: true },
      { email, primary: true, verified: true },
    ],
    ...overrides,
  };
}

/** startSocialSignIn, or startIdentityLink with a token; fails the test unless it starts. */
export async function start(app: Client, provider = 'corp', redirectUri = REDIRECT_URI, token?: string) {
  const res = token
    ? await app.gql(START_LINK, { provider, redirectUri }, { token })
    : await app.gql(START, { provider, redirectUri });
  const answer = token ? res.data?.startIdentityLink : res.data?.startSocialSignIn;
  expect(answer?.__typename, JSON.stringify(res)).toBe('SocialSignInStart');
  return answer as { authorizationUrl: string; state: string };
}

/** The provider's side: the user logs in at the IdP (or GitHub) and is sent back; the callback's parameters. */
export async function atProvider(providers: { idp?: TestOpenIdProvider; github?: TestGitHub }, authorizationUrl: string, user: ProviderUser | GitHubUser) {
  if ('login' in user) providers.github!.loginAs(user);
  else providers.idp!.loginAs(user);
  return browse(authorizationUrl);
}

/** completeSocialSignIn; fails the test on a GraphQL error. */
export async function complete(app: Client, variables: Record<string, unknown>) {
  const res = await app.gql(COMPLETE, variables);
  expect(res.errors, JSON.stringify(res)).toBeUndefined();
  return res.data!.completeSocialSignIn;
}

/** What the redirect back carried, as completeSocialSignIn's variables. */
export const callbackVariables = (provider: string, back: URLSearchParams) => ({
  provider,
  code: back.get('code'),
  state: back.get('state'),
  iss: back.get('iss'),
});

/** The whole sign-in: start, the provider, complete. */
export async function signIn(app: Client, providers: { idp?: TestOpenIdProvider; github?: TestGitHub }, user: ProviderUser | GitHubUser, provider = 'login' in user ? 'github' : 'corp') {
  const started = await start(app, provider);
  const back = await atProvider(providers, started.authorizationUrl, user);
  return complete(app, callbackVariables(provider, back));
}

/** The whole link of `user` at the provider to the account `token` is signed in to; the answer. */
export async function link(app: Client, providers: { idp?: TestOpenIdProvider; github?: TestGitHub }, token: string, user: ProviderUser | GitHubUser, provider = 'login' in user ? 'github' : 'corp') {
  const started = await start(app, provider, REDIRECT_URI, token);
  const back = await atProvider(providers, started.authorizationUrl, user);
  const res = await app.gql(COMPLETE_LINK, callbackVariables(provider, back), { token });
  expect(res.errors, JSON.stringify(res)).toBeUndefined();
  return res.data!.completeIdentityLink;
}
