/** The account-lifecycle operations (sessions, password change, emailed flows) as a client sends them. */
import { expect } from 'vitest';
import type { TestApp } from './app.js';
import { LOGIN, ME } from './operations.js';
import { REFRESH as REFRESH_OPERATION } from './operations.js';
import { linkIn, type TestSmtpServer } from './smtp.js';

const AUTH_RESULT = `
  __typename
  ... on AuthPayload { accessToken refreshToken user { id email emailVerified } }
  ... on Error { code message }
`;

export const SESSION_FIELDS = 'id createdAt lastUsedAt expiresAt userAgent ip current';
export const MY_SESSIONS = `query { me { id sessions { ${SESSION_FIELDS} } } }`;
export const USER_SESSIONS = `query UserSessions($id: ID!) { user(id: $id) { id sessions { ${SESSION_FIELDS} } } }`;
export const REVOKE_SESSION = `mutation RevokeSession($id: ID!) { revokeSession(id: $id) }`;
export const REVOKE_OTHER_SESSIONS = `mutation { revokeOtherSessions }`;
export const REVOKE_USER_SESSIONS = `mutation RevokeUserSessions($userId: ID!) { revokeUserSessions(userId: $userId) }`;

export const CHANGE_PASSWORD = `mutation ChangePassword($current: String!, $next: String!) {
  changePassword(currentPassword: $current, newPassword: $next) { ${AUTH_RESULT} ... on InputError { field } }
}`;
export const REQUEST_EMAIL_VERIFICATION = `mutation { requestEmailVerification }`;
export const VERIFY_EMAIL = `mutation VerifyEmail($token: String!) {
  verifyEmail(token: $token) { __typename ... on User { id emailVerified } ... on Error { code message } }
}`;
export const REQUEST_PASSWORD_RESET = `mutation RequestReset($email: String!) { requestPasswordReset(email: $email) }`;
export const RESET_PASSWORD = `mutation Reset($token: String!, $password: String!) {
  resetPassword(token: $token, newPassword: $password) { ${AUTH_RESULT} ... on InputError { field } }
}`;

/** Another password that passes the policy. */
export const NEW_PASSWORD = 'amber-Falcon-97-harbour';

/** The id of the session an access token was issued in (its `sid` claim). */
export function sessionIdOf(accessToken: string): string {
  return JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString('utf8')).sid;
}

/** Asks for a verification mail as this user and returns the token from its link. */
export async function requestVerificationToken(t: TestApp, smtp: TestSmtpServer, session: { accessToken: string; email: string }) {
  const res = await t.gql(REQUEST_EMAIL_VERIFICATION, {}, { token: session.accessToken });
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  expect(res.data?.requestEmailVerification).toBe(true);
  return linkIn(await smtp.nextMailTo(session.email), 'verify-email').token;
}

/** Asks for a reset mail for this address and returns the token from its link. */
export async function requestResetToken(t: TestApp, smtp: TestSmtpServer, email: string) {
  const res = await t.gql(REQUEST_PASSWORD_RESET, { email });
  expect(res.data?.requestPasswordReset).toBe(true);
  return linkIn(await smtp.nextMailTo(email), 'reset-password').token;
}

/** A token with one character of its secret changed. */
export function tamper(token: string): string {
  const last = token.at(-1) === 'A' ? 'B' : 'A';
  return `${token.slice(0, -1)}${last}`;
}

/** Whether an access token still gets `me` answered. */
export async function meWorks(t: TestApp, accessToken: string): Promise<boolean> {
  return (await t.gql(ME, {}, { token: accessToken })).data?.me != null;
}

/** Whether a refresh token is still accepted (spending it). */
export async function refreshWorks(t: TestApp, refreshToken: string): Promise<boolean> {
  return (await t.gql(REFRESH_OPERATION, { token: refreshToken })).data?.refresh.__typename === 'AuthPayload';
}

/** The __typename login answers with. */
export async function loginAnswer(t: TestApp, email: string, password: string): Promise<string> {
  return (await t.gql(LOGIN, { input: { email, password } })).data?.login.__typename;
}
