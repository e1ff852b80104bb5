/**
 * Rate limits of the account-lifecycle fields (issue 4's requestPasswordReset, resetPassword,
 * changePassword, verifyEmail), as issue 5 specifies them:
 *   requestPasswordReset  5 / hour per IP, 3 / hour per email  (REQUEST_PASSWORD_RESET_IP / _EMAIL)
 *   resetPassword         10 / hour per IP                     (RESET_PASSWORD_IP)
 *   changePassword        10 / hour per account                (CHANGE_PASSWORD_ACCOUNT)
 *   verifyEmail           20 / hour per IP                     (VERIFY_EMAIL_IP)
 * requestPasswordReset returns Boolean!, so over its limit it fails with a GraphQL error
 * (extensions.code RATE_LIMITED, extensions.retryAfter); the others answer RateLimitedError.
 */
import argon2 from 'argon2';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DatabaseHandle } from '../../src/db/client.js';
import { eventsFromIp, expectRateLimited, uniqueIp } from '../support/abuse.js';
import { NEW_PASSWORD, REQUEST_EMAIL_VERIFICATION, REQUEST_PASSWORD_RESET, RESET_PASSWORD } from '../support/account.js';
import { createTestApp, type GraphQLResponse, type TestApp } from '../support/app.js';
import { openTestDatabase } from '../support/database.js';
import { GOOD_PASSWORD, registerUser, uniqueEmail } from '../support/operations.js';
import { userRow } from '../support/rows.js';
import { linkIn, startSmtpServer, type TestSmtpServer } from '../support/smtp.js';

const HOUR = 3600;
const RESULT = `__typename ... on Error { code message } ... on RateLimitedError { retryAfter }`;
const CHANGE = `mutation Change($current: String!, $next: String!) { changePassword(currentPassword: $current, newPassword: $next) { ${RESULT} } }`;
const RESET = `mutation Reset($token: String!, $password: String!) { resetPassword(token: $token, newPassword: $password) { ${RESULT} } }`;
const VERIFY = `mutation Verify($token: String!) { verifyEmail(token: $token) { ${RESULT} ... on User { id emailVerified } } }`;

let smtp: TestSmtpServer;
let database: DatabaseHandle;
let plain: TestApp; // limits off: sets things up
let t: TestApp; // limits on, defaults
beforeAll(async () => {
  smtp = await startSmtpServer();
  database = await openTestDatabase();
  plain = await createTestApp({ SMTP_URL: smtp.url }, database);
  t = await createTestApp({ RATE_LIMITS: 'on', SMTP_URL: smtp.url }, database);
});
afterAll(async () => {
  await plain?.services.tasks.idle();
  await t?.services.tasks.idle();
  await database?.close();
  await smtp?.close();
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** Asserts the RATE_LIMITED GraphQL error of a non-union field and returns its retryAfter. */
function expectRateLimitedError(res: GraphQLResponse, field: string): number {
  expect(res.status).toBe(200);
  expect(res.errors, JSON.stringify(res)).toHaveLength(1);
  const error = res.errors![0]! as { message: string; path?: string[]; extensions?: Record<string, unknown> };
  expect(error.path).toEqual([field]);
  expect(error.extensions?.code).toBe('RATE_LIMITED');
  const retryAfter = error.extensions?.retryAfter;
  expect(Number.isInteger(retryAfter), `retryAfter ${String(retryAfter)}`).toBe(true);
  expect(error.message).toBe(`Too many attempts. Try again in ${String(retryAfter)} seconds.`);
  expect(res.data ?? null).toBeNull();
  return retryAfter as number;
}

async function requestReset(app: TestApp, email: string, ip: string) {
  return app.gql(REQUEST_PASSWORD_RESET, { email }, { ip });
}

/** A reset token for a user, asked for through the unlimited app. */
async function resetTokenFor(email: string): Promise<string> {
  expect((await plain.gql(REQUEST_PASSWORD_RESET, { email })).data?.requestPasswordReset).toBe(true);
  return linkIn(await smtp.nextMailTo(email), 'reset-password').token;
}

/** A verification token for a user, asked for through the unlimited app. */
async function verifyTokenFor(session: { accessToken: string; email: string }): Promise<string> {
  expect((await plain.gql(REQUEST_EMAIL_VERIFICATION, {}, { token: session.accessToken })).data?.requestEmailVerification).toBe(true);
  return linkIn(await smtp.nextMailTo(session.email), 'verify-email').token;
}

describe('requestPasswordReset limits', () => {
  it('refuses the 6th request from one IP within an hour (5/3600) with RATE_LIMITED and extensions.retryAfter', async () => {
    const ip = uniqueIp();
    for (let i = 1; i <= 5; i++) {
      const res = await requestReset(t, uniqueEmail('nobody'), ip);
      expect(res.data?.requestPasswordReset, `request ${i}: ${JSON.stringify(res)}`).toBe(true);
    }
    const retryAfter = expectRateLimitedError(await requestReset(t, uniqueEmail('nobody'), ip), 'requestPasswordReset');
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(HOUR);
    // Another address is not limited.
    expect((await requestReset(t, uniqueEmail('nobody'), uniqueIp())).data?.requestPasswordReset).toBe(true);
  });

  it('refuses the 4th request for one email within an hour (3/3600), from any IP and any spelling, and sends no 4th mail', async () => {
    const { email } = await registerUser(plain);
    for (let i = 1; i <= 3; i++) {
      const res = await requestReset(t, email, uniqueIp());
      expect(res.data?.requestPasswordReset, `request ${i}: ${JSON.stringify(res)}`).toBe(true);
    }
    const ip = uniqueIp();
    const retryAfter = expectRateLimitedError(await requestReset(t, `  ${email.toUpperCase()} `, ip), 'requestPasswordReset');
    expect(retryAfter).toBeLessThanOrEqual(HOUR);
    await t.services.tasks.idle();
    expect(smtp.mailsTo(email)).toHaveLength(3);
    expect((await eventsFromIp(t, ip)).map((e) => e.type)).toEqual(['rate_limited']);
  });

  it('answers the same over the per-email limit whether or not the email has an account', async () => {
    const { email: real } = await registerUser(plain);
    const unknown = uniqueEmail('nobody');
    for (let i = 0; i < 3; i++) {
      await requestReset(t, real, uniqueIp());
      await requestReset(t, unknown, uniqueIp());
    }
    const a = await requestReset(t, real, uniqueIp());
    const b = await requestReset(t, unknown, uniqueIp());
    expectRateLimitedError(a, 'requestPasswordReset');
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    await t.services.tasks.idle();
  });

  it('works again once the hour has passed', async () => {
    const app = await createTestApp({ RATE_LIMITS: 'on', SMTP_URL: smtp.url, RATE_LIMIT_REQUEST_PASSWORD_RESET_IP: '1/3600' }, database);
    const ip = uniqueIp();
    expect((await requestReset(app, uniqueEmail('nobody'), ip)).data?.requestPasswordReset).toBe(true);
    const retryAfter = expectRateLimitedError(await requestReset(app, uniqueEmail('nobody'), ip), 'requestPasswordReset');
    app.clock.advance(retryAfter);
    expect((await requestReset(app, uniqueEmail('nobody'), ip)).data?.requestPasswordReset).toBe(true);
    await app.services.tasks.idle();
  });

  it('follows RATE_LIMIT_REQUEST_PASSWORD_RESET_EMAIL', async () => {
    const app = await createTestApp({ RATE_LIMITS: 'on', SMTP_URL: smtp.url, RATE_LIMIT_REQUEST_PASSWORD_RESET_EMAIL: '1/3600' }, database);
    const email = uniqueEmail('nobody');
    expect((await requestReset(app, email, uniqueIp())).data?.requestPasswordReset).toBe(true);
    expectRateLimitedError(await requestReset(app, email, uniqueIp()), 'requestPasswordReset');
    await app.services.tasks.idle();
  });
});

describe('changePassword limit (per account)', () => {
  it('answers the 11th attempt for one account within an hour (10/3600) with RateLimitedError, without checking the password', async () => {
    const session = await registerUser(plain);
    for (let i = 1; i <= 10; i++) {
      const res = await t.gql(CHANGE, { current: `wrong-current-${i}`, next: NEW_PASSWORD }, { token: session.accessToken, ip: uniqueIp() });
      expect(res.data?.changePassword.__typename, `attempt ${i}: ${JSON.stringify(res)}`).toBe('InvalidCredentialsError');
    }
    const verify = vi.spyOn(argon2, 'verify');
    const hash = vi.spyOn(argon2, 'hash');
    const res = await t.gql(CHANGE, { current: GOOD_PASSWORD, next: NEW_PASSWORD }, { token: session.accessToken, ip: uniqueIp() });
    const retryAfter = expectRateLimited(res.data?.changePassword);
    expect(retryAfter).toBeLessThanOrEqual(HOUR);
    expect(verify).not.toHaveBeenCalled();
    expect(hash).not.toHaveBeenCalled();
    // The password did not change.
    expect((await plain.gql(CHANGE, { current: GOOD_PASSWORD, next: NEW_PASSWORD }, { token: session.accessToken })).data?.changePassword.__typename).toBe(
      'AuthPayload',
    );
  });

  it('limits one account only: another account changes its password at once', async () => {
    const app = await createTestApp({ RATE_LIMITS: 'on', SMTP_URL: smtp.url, RATE_LIMIT_CHANGE_PASSWORD_ACCOUNT: '1/3600' }, database);
    const [a, b] = [await registerUser(plain), await registerUser(plain)];
    const ip = uniqueIp();
    await app.gql(CHANGE, { current: 'wrong-current-1', next: NEW_PASSWORD }, { token: a.accessToken, ip });
    expectRateLimited((await app.gql(CHANGE, { current: GOOD_PASSWORD, next: NEW_PASSWORD }, { token: a.accessToken, ip })).data?.changePassword);
    expect((await app.gql(CHANGE, { current: GOOD_PASSWORD, next: NEW_PASSWORD }, { token: b.accessToken, ip })).data?.changePassword.__typename).toBe(
      'AuthPayload',
    );
  });
});

describe('changePassword limit (per IP)', () => {
  it('refuses changePassword from an address past RATE_LIMIT_CHANGE_PASSWORD_IP, whichever account asks', async () => {
    const app = await createTestApp({ RATE_LIMITS: 'on', SMTP_URL: smtp.url, RATE_LIMIT_CHANGE_PASSWORD_IP: '2/3600' }, database);
    const ip = uniqueIp();
    const sessions = [await registerUser(plain), await registerUser(plain), await registerUser(plain)];
    for (const session of sessions.slice(0, 2)) {
      const res = await app.gql(CHANGE, { current: 'wrong-current', next: NEW_PASSWORD }, { token: session.accessToken, ip });
      expect(res.data?.changePassword.__typename).toBe('InvalidCredentialsError');
    }
    const third = await app.gql(CHANGE, { current: GOOD_PASSWORD, next: NEW_PASSWORD }, { token: sessions[2]!.accessToken, ip });
    expectRateLimited(third.data?.changePassword);
    const elsewhere = await app.gql(CHANGE, { current: GOOD_PASSWORD, next: NEW_PASSWORD }, { token: sessions[2]!.accessToken, ip: uniqueIp() });
    expect(elsewhere.data?.changePassword.__typename).toBe('AuthPayload');
  });
});

describe('requestEmailVerification limit (per account)', () => {
  it('refuses the 4th request of one account within an hour (3/3600) with RATE_LIMITED and sends no 4th mail', async () => {
    const session = await registerUser(plain);
    for (let i = 1; i <= 3; i++) {
      const res = await t.gql(REQUEST_EMAIL_VERIFICATION, {}, { token: session.accessToken, ip: uniqueIp() });
      expect(res.data?.requestEmailVerification, `request ${i}: ${JSON.stringify(res)}`).toBe(true);
      await smtp.nextMailTo(session.email);
    }
    const res = await t.gql(REQUEST_EMAIL_VERIFICATION, {}, { token: session.accessToken, ip: uniqueIp() });
    expect(expectRateLimitedError(res, 'requestEmailVerification')).toBeLessThanOrEqual(HOUR);
    await t.services.tasks.idle();
    expect(smtp.mailsTo(session.email)).toHaveLength(3);
  });

  it('limits one account only: another account still gets its mail', async () => {
    const app = await createTestApp(
      { RATE_LIMITS: 'on', SMTP_URL: smtp.url, RATE_LIMIT_REQUEST_EMAIL_VERIFICATION_ACCOUNT: '1/3600' },
      database,
    );
    const [a, b] = [await registerUser(plain), await registerUser(plain)];
    expect((await app.gql(REQUEST_EMAIL_VERIFICATION, {}, { token: a.accessToken })).data?.requestEmailVerification).toBe(true);
    expectRateLimitedError(await app.gql(REQUEST_EMAIL_VERIFICATION, {}, { token: a.accessToken }), 'requestEmailVerification');
    expect((await app.gql(REQUEST_EMAIL_VERIFICATION, {}, { token: b.accessToken })).data?.requestEmailVerification).toBe(true);
  });
});

describe('resetPassword limit (per IP)', () => {
  it('answers the 11th attempt from one IP within an hour (10/3600) with RateLimitedError, without spending a valid token', async () => {
    const { email } = await registerUser(plain);
    const token = await resetTokenFor(email);
    const ip = uniqueIp();
    for (let i = 1; i <= 10; i++) {
      const res = await t.gql(RESET, { token: `bogus.token-${i}`, password: NEW_PASSWORD }, { ip });
      expect(res.data?.resetPassword.__typename, `attempt ${i}: ${JSON.stringify(res)}`).toBe('InvalidTokenError');
    }
    const hash = vi.spyOn(argon2, 'hash');
    const retryAfter = expectRateLimited((await t.gql(RESET, { token, password: NEW_PASSWORD }, { ip })).data?.resetPassword);
    expect(retryAfter).toBeLessThanOrEqual(HOUR);
    expect(hash).not.toHaveBeenCalled();
    // From another address the same token still works: it was not spent.
    const res = await t.gql(RESET_PASSWORD, { token, password: NEW_PASSWORD }, { ip: uniqueIp() });
    expect(res.data?.resetPassword.__typename).toBe('AuthPayload');
  });
});

describe('verifyEmail limit (per IP)', () => {
  it('answers the 21st attempt from one IP within an hour (20/3600) with RateLimitedError, and verifies nothing', async () => {
    const session = await registerUser(plain);
    const token = await verifyTokenFor(session);
    const ip = uniqueIp();
    for (let i = 1; i <= 20; i++) {
      const res = await t.gql(VERIFY, { token: `bogus.token-${i}` }, { ip });
      expect(res.data?.verifyEmail.__typename, `attempt ${i}: ${JSON.stringify(res)}`).toBe('InvalidTokenError');
    }
    const res = await t.gql(VERIFY, { token }, { ip });
    const retryAfter = expectRateLimited(res.data?.verifyEmail);
    expect(retryAfter).toBeLessThanOrEqual(HOUR);
    expect((await userRow(t, session.userId)).emailVerified).toBe(false);
    t.clock.advance(retryAfter);
    expect((await t.gql(VERIFY, { token }, { ip })).data?.verifyEmail).toMatchObject({ __typename: 'User', emailVerified: true });
  });
});

describe('RATE_LIMITS=off', () => {
  it('applies none of the account limits', async () => {
    const ip = uniqueIp();
    const email = uniqueEmail('nobody');
    for (let i = 0; i < 8; i++) expect((await requestReset(plain, email, ip)).data?.requestPasswordReset).toBe(true);
    for (let i = 0; i < 12; i++) {
      expect((await plain.gql(RESET, { token: `bogus.token-${i}`, password: NEW_PASSWORD }, { ip })).data?.resetPassword.__typename).toBe(
        'InvalidTokenError',
      );
    }
    await plain.services.tasks.idle();
  });
});
