import { randomBytes } from 'node:crypto';
import type { TestApp } from './app.js';

/** A password that passes the policy. */
export const GOOD_PASSWORD = 'vivid-Otter-42-lantern';

/** A unique address, so tests in one database never collide. */
export const uniqueEmail = (prefix = 'user') => `${prefix}-${randomBytes(5).toString('hex')}@example.com`;

const COMMON = `
  __typename
  ... on AuthPayload { accessToken refreshToken tokenType expiresIn refreshExpiresIn user { id email name roles emailVerified active createdAt } }
  ... on Error { code message }
  ... on RateLimitedError { retryAfter }
`;
const PAYLOAD = `${COMMON} ... on InputError { field }`;

export const REGISTER = `mutation Register($input: RegisterInput!) { register(input: $input) { ${PAYLOAD} } }`;
export const LOGIN = `mutation Login($input: LoginInput!) { login(input: $input) { ${PAYLOAD} } }`;
export const REFRESH = `mutation Refresh($token: String) { refresh(refreshToken: $token) { ${COMMON} } }`;
export const LOGOUT = `mutation Logout($token: String, $everywhere: Boolean) { logout(refreshToken: $token, everywhere: $everywhere) }`;
export const ME = `query { me { id email name roles emailVerified active createdAt } }`;
/** me and refresh selecting only what attack tests compare, so answers can be matched whole. */
export const ME_ID = `query { me { id } }`;
export const REFRESH_BRIEF = `mutation Refresh($token: String) {
  refresh(refreshToken: $token) { __typename ... on AuthPayload { accessToken refreshToken user { id } } ... on Error { code } }
}`;

export interface Session {
  accessToken: string;
  refreshToken: string;
  userId: string;
  email: string;
}

/** Registers a fresh user and returns their first session's tokens. */
export async function registerUser(t: Pick<TestApp, 'gql'>, options: { email?: string; password?: string; name?: string } = {}): Promise<Session> {
  const email = options.email ?? uniqueEmail();
  const res = await t.gql(REGISTER, { input: { email, password: options.password ?? GOOD_PASSWORD, name: options.name } });
  const payload = res.data?.register;
  if (payload?.__typename !== 'AuthPayload') throw new Error(`register failed: ${JSON.stringify(res)}`);
  return { accessToken: payload.accessToken, refreshToken: payload.refreshToken, userId: payload.user.id, email: payload.user.email };
}

/** Signs in and returns the new session's tokens. */
export async function loginUser(t: Pick<TestApp, 'gql'>, email: string, password = GOOD_PASSWORD): Promise<Session> {
  const res = await t.gql(LOGIN, { input: { email, password } });
  const payload = res.data?.login;
  if (payload?.__typename !== 'AuthPayload') throw new Error(`login failed: ${JSON.stringify(res)}`);
  return { accessToken: payload.accessToken, refreshToken: payload.refreshToken, userId: payload.user.id, email: payload.user.email };
}
