/** Operations and helpers of the second-factor tests, sent as a client sends them. */
import { and, asc, eq, inArray } from 'drizzle-orm';
import { Secret, TOTP } from 'otpauth';
import { decodeJwt } from 'jose';
import { authEvents, users } from '../../src/db/schema.js';
import { expect } from 'vitest';
import type { GraphQLResponse, TestApp } from '../support/app.js';
import { registerUser, type Session } from '../support/operations.js';
import type { ServedApp } from '../support/served.js';

export const REAUTHENTICATE = `mutation Reauthenticate($password: String, $code: String, $passkey: JSON) {
  reauthenticate(password: $password, code: $code, passkey: $passkey) {
    __typename
    ... on Reauthentication { accessToken expiresIn authTime amr }
    ... on Error { code message }
    ... on InputError { field }
    ... on RateLimitedError { retryAfter }
  }
}`;

export const CHANGE_PASSWORD_BRIEF = `mutation ChangePassword($current: String!, $next: String!) {
  changePassword(currentPassword: $current, newPassword: $next) { __typename ... on AuthPayload { accessToken } ... on Error { code } }
}`;

/** The `extensions.code` of the one error of an answer refused by access control (no data for the field). */
export function refusalCode(res: GraphQLResponse): string | undefined {
  expect(res.errors, JSON.stringify(res)).toHaveLength(1);
  return res.errors![0]!.extensions?.code;
}

export const ENROLL_TOTP = `mutation { enrollTotp { secret otpauthUri qrCodeSvg } }`;
export const CONFIRM_TOTP = `mutation ConfirmTotp($code: String!) {
  confirmTotp(code: $code) { __typename ... on RecoveryCodes { codes } ... on Error { code message } }
}`;
export const DISABLE_TOTP = `mutation { disableTotp }`;
export const REGENERATE_RECOVERY_CODES = `mutation { regenerateRecoveryCodes { codes } }`;
export const MY_FACTORS = `query { me { id secondFactors } }`;

/** The 6-digit code of a base32 secret at an instant (what the user's app shows then). */
export function totpCode(secret: string, at: Date): string {
  return TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: at.getTime() });
}

/**
 * Marks the address of the token's user verified, as the owner's click on the mailed link would
 * (that flow is tested on its own, test/graphql/email-verification.test.ts): adding a second
 * factor needs a verified address. Set-up, written to the row.
 */
export async function verifyAddressOf(app: ServedApp | TestApp, accessToken: string): Promise<void> {
  const { sub } = decodeJwt(accessToken);
  const { db } = 't' in app ? app.t.database : app.database;
  await db.update(users).set({ emailVerified: true }).where(eq(users.id, sub!));
}

/** registerUser, then its address verified (verifyAddressOf): a user who may add a second factor. */
export async function registerVerifiedUser(app: ServedApp | TestApp, options: Parameters<typeof registerUser>[1] = {}): Promise<Session> {
  const user = await registerUser(app, options);
  await verifyAddressOf(app, user.accessToken);
  return user;
}

/** Turns TOTP on for the token's user (its address verified first): the secret and the recovery codes. */
export async function enableTotp(app: ServedApp, accessToken: string): Promise<{ secret: string; codes: string[] }> {
  await verifyAddressOf(app, accessToken);
  const enrolled = await app.gql(ENROLL_TOTP, {}, { token: accessToken });
  expect(enrolled.errors, JSON.stringify(enrolled)).toBeUndefined();
  const { secret } = enrolled.data!.enrollTotp;
  const confirmed = await app.gql(CONFIRM_TOTP, { code: totpCode(secret, app.t.clock.now()) }, { token: accessToken });
  expect(confirmed.data?.confirmTotp.__typename, JSON.stringify(confirmed)).toBe('RecoveryCodes');
  return { secret, codes: confirmed.data!.confirmTotp.codes };
}

/** The user's audit events of these types, oldest first. */
export async function eventsOf(app: ServedApp, userId: string, types: string[]) {
  const rows = await app.t.database.db
    .select()
    .from(authEvents)
    .where(and(eq(authEvents.userId, userId), inArray(authEvents.type, types)))
    .orderBy(asc(authEvents.createdAt), asc(authEvents.id));
  return rows;
}

export const LOGIN_2FA = `mutation Login($input: LoginInput!) {
  login(input: $input) {
    __typename
    ... on AuthPayload { accessToken refreshToken user { id } }
    ... on SecondFactorRequired { challenge methods expiresIn passkeyOptions }
    ... on Error { code message }
    ... on RateLimitedError { retryAfter }
  }
}`;
export const COMPLETE_SIGN_IN = `mutation Complete($challenge: String!, $code: String, $passkey: JSON) {
  completeSignIn(challenge: $challenge, code: $code, passkey: $passkey) {
    __typename
    ... on AuthPayload { accessToken refreshToken user { id } }
    ... on Error { code message }
    ... on InputError { field }
    ... on RateLimitedError { retryAfter }
  }
}`;

/** The whole SecondFactorRequired answer for a user with TOTP and recovery codes: a challenge, 300 s, no passkey options. */
export const CHALLENGED = {
  __typename: 'SecondFactorRequired',
  challenge: expect.stringMatching(/^[\w-]{22}\.[\w-]{43}$/),
  methods: ['TOTP', 'RECOVERY_CODE'],
  expiresIn: 300,
  passkeyOptions: null,
};

/** Signs in with the password; expects SecondFactorRequired and returns its challenge. */
export async function passwordStep(app: ServedApp, email: string, password: string): Promise<string> {
  const res = await app.gql(LOGIN_2FA, { input: { email, password } });
  expect(res.data?.login.__typename, JSON.stringify(res)).toBe('SecondFactorRequired');
  return res.data!.login.challenge;
}
