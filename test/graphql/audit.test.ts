import { eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH_EVENT_TYPES } from '../../src/audit/audit-log.js';
import type { DatabaseHandle } from '../../src/db/client.js';
import { authEvents, type AuthEventRow } from '../../src/db/schema.js';
import { purgeExpired } from '../../src/purge.js';
import { eventsFromIp, eventsOfUser, expectRateLimited, loginFrom, uniqueIp } from '../support/abuse.js';
import {
  CHANGE_PASSWORD,
  NEW_PASSWORD,
  REQUEST_EMAIL_VERIFICATION,
  REQUEST_PASSWORD_RESET,
  RESET_PASSWORD,
  REVOKE_SESSION,
  VERIFY_EMAIL,
  sessionIdOf,
} from '../support/account.js';
import { createTestApp, type RequestOptions, type TestApp } from '../support/app.js';
import { GRANT_ROLE, REVOKE_ROLE, SET_USER_ACTIVE, expectRefused, registerAdmin, registerWithPermissions } from '../support/authz.js';
import { OWN_DATABASE_TIMEOUT, openTestDatabase } from '../support/database.js';
import { GOOD_PASSWORD, LOGIN, LOGOUT, REFRESH, REGISTER, registerUser, uniqueEmail, type Session } from '../support/operations.js';
import { linkIn, startSmtpServer, type TestSmtpServer } from '../support/smtp.js';
import { CONFIRM_TOTP, DISABLE_TOTP, ENROLL_TOTP, REAUTHENTICATE, REGENERATE_RECOVERY_CODES, totpCode, verifyAddressOf } from '../factors/support.js';

const UA = 'AuditTest/1.0 (authgraph; +https://example.test)';
const WRONG = 'not-the-password-7';

// `t` has limits off (the flows), `limited` has them on (lockout, rate_limited); one database.
let database: DatabaseHandle;
let smtp: TestSmtpServer;
let t: TestApp;
let limited: TestApp;
let admin: Session;
beforeAll(async () => {
  smtp = await startSmtpServer();
  database = await openTestDatabase();
  t = await createTestApp({ SMTP_URL: smtp.url }, database);
  limited = await createTestApp({ RATE_LIMITS: 'on', RATE_LIMIT_LOGIN_IP: '2/60', SMTP_URL: smtp.url }, database);
  admin = await registerAdmin(t);
});
afterAll(async () => {
  await t?.services.tasks.idle();
  await database?.close();
  await smtp?.close();
});

/** Every secret the flows of this file hand out or receive; none may appear in the audit log. */
const secrets = new Set<string>([GOOD_PASSWORD, NEW_PASSWORD, WRONG]);
function keepSecrets(...values: Array<string | undefined>) {
  for (const value of values) {
    if (!value) continue;
    secrets.add(value);
    // The secret half of `<id>.<secret>` tokens, and a JWT's signature.
    const parts = value.split('.');
    if (parts.length >= 2 && parts.at(-1)!.length >= 16) secrets.add(parts.at(-1)!);
  }
}
function expectNoSecrets(rows: AuthEventRow[]) {
  const text = JSON.stringify(rows);
  for (const secret of secrets) expect(text.includes(secret), `a secret in ${text}`).toBe(false);
}

const from = (ip: string, token?: string): RequestOptions => ({ ip, token, headers: { 'user-agent': UA } });

/** The one event of a type from an address, checked for user, address and user agent. */
async function theEvent(app: TestApp, ip: string, type: string, userId: string | null) {
  const rows = await eventsFromIp(app, ip, [type]);
  expect(rows, `${type} events from ${ip}`).toHaveLength(1);
  const row = rows[0]!;
  expect(row).toMatchObject({ type, userId, ip, userAgent: UA });
  expect(row.createdAt).toBeInstanceOf(Date);
  expectNoSecrets([row]);
  return row;
}

async function registerFrom(ip: string): Promise<Session> {
  const email = uniqueEmail('audit');
  const res = await t.gql(REGISTER, { input: { email, password: GOOD_PASSWORD } }, from(ip));
  const payload = res.data!.register;
  expect(payload.__typename).toBe('AuthPayload');
  keepSecrets(payload.accessToken, payload.refreshToken);
  return { email, userId: payload.user.id, accessToken: payload.accessToken, refreshToken: payload.refreshToken };
}

describe('audit rows for every event type', () => {
  it('register: type, user, IP, user agent, and the session in detail', async () => {
    const ip = uniqueIp();
    const session = await registerFrom(ip);
    const row = await theEvent(t, ip, 'register', session.userId);
    expect(row.detail).toEqual({ sessionId: sessionIdOf(session.accessToken) });
    expect((await eventsFromIp(t, ip)).map((e) => e.type)).toEqual(['register']);
  });

  it('login_success and login_failure (wrong password, with the user; unknown email, without)', async () => {
    const session = await registerUser(t);
    const [okIp, wrongIp, unknownIp] = [uniqueIp(), uniqueIp(), uniqueIp()];
    const ok = await t.gql(LOGIN, { input: { email: session.email, password: GOOD_PASSWORD } }, from(okIp));
    keepSecrets(ok.data!.login.accessToken, ok.data!.login.refreshToken);
    const success = await theEvent(t, okIp, 'login_success', session.userId);
    expect(success.detail).toEqual({ sessionId: sessionIdOf(ok.data!.login.accessToken) });

    await t.gql(LOGIN, { input: { email: session.email, password: WRONG } }, from(wrongIp));
    expect((await theEvent(t, wrongIp, 'login_failure', session.userId)).detail).toEqual({ reason: 'wrong_password' });

    await t.gql(LOGIN, { input: { email: uniqueEmail('nobody'), password: WRONG } }, from(unknownIp));
    expect((await theEvent(t, unknownIp, 'login_failure', null)).detail).toEqual({ reason: 'unknown_email' });
  });

  it('lockout: recorded once, from the attempt that caused it, with the wait it leaves (900 s) and the account', async () => {
    const { email, userId } = await registerUser(t);
    const ips = Array.from({ length: 5 }, () => uniqueIp());
    for (const ip of ips) await limited.gql(LOGIN, { input: { email, password: WRONG } }, from(ip));
    const row = await theEvent(limited, ips[4]!, 'lockout', userId);
    // The wait it leaves: the lock is 60 s, but 5 failures within 900 s block until the oldest leaves the window.
    expect(row.detail).toEqual({ seconds: 900 });
    for (const ip of ips.slice(0, 4)) expect(await eventsFromIp(limited, ip, ['lockout'])).toEqual([]);
  });

  it('lockout of an email no account has: recorded without a user', async () => {
    const ips = Array.from({ length: 5 }, () => uniqueIp());
    const email = uniqueEmail('nobody');
    for (const ip of ips) await limited.gql(LOGIN, { input: { email, password: WRONG } }, from(ip));
    expect((await theEvent(limited, ips[4]!, 'lockout', null)).detail).toEqual({ seconds: 900 });
  });

  it('lockout_lifted: the attempt that reached the threshold had the right password; its lock is recorded, then lifted', async () => {
    const { email, userId } = await registerUser(t);
    const ips = Array.from({ length: 5 }, () => uniqueIp());
    for (const ip of ips.slice(0, 4)) await limited.gql(LOGIN, { input: { email, password: WRONG } }, from(ip));
    const res = await limited.gql(LOGIN, { input: { email, password: GOOD_PASSWORD } }, from(ips[4]!));
    expect(res.data!.login.__typename).toBe('AuthPayload');
    keepSecrets(res.data!.login.accessToken, res.data!.login.refreshToken);
    expect((await theEvent(limited, ips[4]!, 'lockout', userId)).detail).toEqual({ seconds: 900 });
    expect((await theEvent(limited, ips[4]!, 'lockout_lifted', userId)).detail).toEqual({ reason: 'signed_in' });
    // Lifted indeed: the next wrong password is counted afresh, not refused.
    const next = await limited.gql(LOGIN, { input: { email, password: WRONG } }, from(uniqueIp()));
    expect(next.data!.login.__typename).toBe('InvalidCredentialsError');
  });

  it('lockout_lifted: a right password refused for another reason (disabled account) takes its attempt back, and its lock', async () => {
    const { email, userId } = await registerUser(t);
    const disabled = await t.gql(SET_USER_ACTIVE, { userId, active: false }, { token: admin.accessToken });
    expect(disabled.data?.setUserActive.active).toBe(false);
    const ips = Array.from({ length: 5 }, () => uniqueIp());
    for (const ip of ips.slice(0, 4)) await limited.gql(LOGIN, { input: { email, password: WRONG } }, from(ip));
    const res = await limited.gql(LOGIN, { input: { email, password: GOOD_PASSWORD } }, from(ips[4]!));
    expect(res.data!.login.__typename).toBe('AccountDisabledError');
    expect((await theEvent(limited, ips[4]!, 'lockout', userId)).detail).toEqual({ seconds: 900 });
    expect((await theEvent(limited, ips[4]!, 'lockout_lifted', userId)).detail).toEqual({ reason: 'attempt_withdrawn' });
    const next = await limited.gql(LOGIN, { input: { email, password: WRONG } }, from(uniqueIp()));
    expect(next.data!.login.__typename).toBe('InvalidCredentialsError');
  });

  it('rate_limited: the field, the limits exceeded and retryAfter', async () => {
    const { email } = await registerUser(t);
    const ip = uniqueIp();
    for (let i = 0; i < 2; i++) await limited.gql(LOGIN, { input: { email, password: GOOD_PASSWORD } }, from(ip));
    const res = await limited.gql(LOGIN, { input: { email, password: GOOD_PASSWORD } }, from(ip));
    const retryAfter = expectRateLimited(res.data!.login);
    const row = await theEvent(limited, ip, 'rate_limited', null);
    expect(row.detail).toEqual({ field: 'login', limits: ['LOGIN_IP'], retryAfter });
  });

  it('rate_limited: a login refused by the lockout says so, naming the account', async () => {
    const { email, userId: userIdOfEmail } = await registerUser(t);
    for (let i = 0; i < 5; i++) await limited.gql(LOGIN, { input: { email, password: WRONG } }, from(uniqueIp()));
    const ip = uniqueIp();
    await limited.gql(LOGIN, { input: { email, password: GOOD_PASSWORD } }, from(ip));
    const row = await theEvent(limited, ip, 'rate_limited', userIdOfEmail);
    expect(row.detail).toEqual({ field: 'login', reason: 'lockout', retryAfter: 900 });
  });

  it('rate_limited for a lockout: one row per wait, not per refused attempt; the next wait records another', async () => {
    // An app of its own on the same database, so that moving its clock disturbs no other test.
    const app = await createTestApp({ RATE_LIMITS: 'on' }, database);
    const { email, userId } = await registerUser(t);
    const ofUser = async (type: string) =>
      (await eventsOfUser(app, userId)).filter((e) => e.type === type).sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
    for (let i = 0; i < 5; i++) expect((await loginFrom(app, email, WRONG, uniqueIp())).__typename).toBe('InvalidCredentialsError');

    // 10 refused attempts (right and wrong passwords, each from a fresh address) as the wait counts down.
    const waits: number[] = [];
    for (let i = 0; i < 10; i++) {
      waits.push(expectRateLimited(await loginFrom(app, email, i % 2 === 0 ? GOOD_PASSWORD : WRONG, uniqueIp())));
      app.clock.advance(10);
    }
    expect(waits).toEqual([900, 890, 880, 870, 860, 850, 840, 830, 820, 810]);
    expect((await ofUser('rate_limited')).map((e) => e.detail)).toEqual([{ field: 'login', reason: 'lockout', retryAfter: 900 }]);

    // The wait ends; one more wrong password locks again (120 s), and its first refusal is recorded.
    app.clock.advance(800);
    expect((await loginFrom(app, email, WRONG, uniqueIp())).__typename).toBe('InvalidCredentialsError');
    expect((await ofUser('lockout')).map((e) => e.detail)).toEqual([{ seconds: 900 }, { seconds: 120 }]);
    for (let i = 0; i < 3; i++) expect(expectRateLimited(await loginFrom(app, email, GOOD_PASSWORD, uniqueIp()))).toBe(120);
    expect((await ofUser('rate_limited')).map((e) => e.detail)).toEqual([
      { field: 'login', reason: 'lockout', retryAfter: 900 },
      { field: 'login', reason: 'lockout', retryAfter: 120 },
    ]);
  });

  it('refresh, and refresh_reuse_detected when a spent token comes back after the grace period', async () => {
    const session = await registerFrom(uniqueIp());
    const [refreshIp, replayIp] = [uniqueIp(), uniqueIp()];
    const res = await t.gql(REFRESH, { token: session.refreshToken }, from(refreshIp));
    keepSecrets(res.data!.refresh.accessToken, res.data!.refresh.refreshToken);
    const sessionId = sessionIdOf(session.accessToken);
    expect((await theEvent(t, refreshIp, 'refresh', session.userId)).detail).toEqual({ sessionId, retry: false });

    t.clock.advance(11); // past REFRESH_REUSE_GRACE
    const replay = await t.gql(REFRESH, { token: session.refreshToken }, from(replayIp));
    expect(replay.data!.refresh.__typename).toBe('InvalidRefreshTokenError');
    expect((await theEvent(t, replayIp, 'refresh_reuse_detected', session.userId)).detail).toEqual({
      sessionId,
      sessionRevoked: true,
    });
  });

  it('logout and logout_everywhere', async () => {
    const one = await registerFrom(uniqueIp());
    const two = await registerFrom(uniqueIp());
    const [ip1, ip2] = [uniqueIp(), uniqueIp()];
    expect((await t.gql(LOGOUT, {}, from(ip1, one.accessToken))).data?.logout).toBe(true);
    expect((await theEvent(t, ip1, 'logout', one.userId)).detail).toEqual({ sessionId: sessionIdOf(one.accessToken) });
    expect((await t.gql(LOGOUT, { everywhere: true }, from(ip2, two.accessToken))).data?.logout).toBe(true);
    await theEvent(t, ip2, 'logout_everywhere', two.userId);
  });

  it('role_grant, role_revoke, user_disabled, user_enabled: about the target user, from the admin', async () => {
    const target = await registerUser(t);
    const steps: Array<[string, string, Record<string, unknown>, Record<string, unknown>]> = [
      ['role_grant', GRANT_ROLE, { userId: target.userId, role: 'admin' }, { role: 'admin', by: admin.userId }],
      ['role_revoke', REVOKE_ROLE, { userId: target.userId, role: 'admin' }, { role: 'admin', by: admin.userId }],
      ['user_disabled', SET_USER_ACTIVE, { userId: target.userId, active: false }, { by: admin.userId }],
      ['user_enabled', SET_USER_ACTIVE, { userId: target.userId, active: true }, { by: admin.userId }],
    ];
    for (const [type, query, variables, detail] of steps) {
      const ip = uniqueIp();
      const res = await t.gql(query, variables, from(ip, admin.accessToken));
      expect(res.errors, `${type}: ${JSON.stringify(res.errors)}`).toBeUndefined();
      const row = await theEvent(t, ip, type, target.userId);
      expect(row.detail, type).toMatchObject(detail);
    }
  });

  it('password_change (issue 4)', async () => {
    const session = await registerFrom(uniqueIp());
    const ip = uniqueIp();
    const res = await t.gql(CHANGE_PASSWORD, { current: GOOD_PASSWORD, next: NEW_PASSWORD }, from(ip, session.accessToken));
    expect(res.data?.changePassword.__typename, JSON.stringify(res)).toBe('AuthPayload');
    keepSecrets(res.data!.changePassword.accessToken, res.data!.changePassword.refreshToken);
    await theEvent(t, ip, 'password_change', session.userId);
  });

  it('session_revoked (issue 4)', async () => {
    const session = await registerFrom(uniqueIp());
    const other = await t.gql(LOGIN, { input: { email: session.email, password: GOOD_PASSWORD } });
    keepSecrets(other.data!.login.accessToken, other.data!.login.refreshToken);
    const ip = uniqueIp();
    const res = await t.gql(REVOKE_SESSION, { id: sessionIdOf(other.data!.login.accessToken) }, from(ip, session.accessToken));
    expect(res.data?.revokeSession, JSON.stringify(res)).toBe(true);
    await theEvent(t, ip, 'session_revoked', session.userId);
  });

  it('password_reset_requested and password_reset (issue 4)', async () => {
    const session = await registerFrom(uniqueIp());
    const [askIp, resetIp] = [uniqueIp(), uniqueIp()];
    expect((await t.gql(REQUEST_PASSWORD_RESET, { email: session.email }, from(askIp))).data?.requestPasswordReset).toBe(true);
    const { token } = linkIn(await smtp.nextMailTo(session.email), 'reset-password');
    keepSecrets(token);
    await t.services.tasks.idle();
    expect((await theEvent(t, askIp, 'password_reset_requested', session.userId)).detail).toEqual({ sent: true });
    const res = await t.gql(RESET_PASSWORD, { token, password: NEW_PASSWORD }, from(resetIp));
    expect(res.data?.resetPassword.__typename, JSON.stringify(res)).toBe('AuthPayload');
    keepSecrets(res.data!.resetPassword.accessToken, res.data!.resetPassword.refreshToken);
    await theEvent(t, resetIp, 'password_reset', session.userId);
  });

  it('reauthentication, with the method, and its failure (issue 14)', async () => {
    const session = await registerFrom(uniqueIp());
    const [wrongIp, rightIp] = [uniqueIp(), uniqueIp()];
    const wrong = await t.gql(REAUTHENTICATE, { password: WRONG }, from(wrongIp, session.accessToken));
    expect(wrong.data?.reauthenticate.__typename, JSON.stringify(wrong)).toBe('InvalidCredentialsError');
    expect((await theEvent(t, wrongIp, 'reauthentication', session.userId)).detail).toMatchObject({ method: 'password', failed: 'wrong_password' });
    const res = await t.gql(REAUTHENTICATE, { password: GOOD_PASSWORD }, from(rightIp, session.accessToken));
    expect(res.data?.reauthenticate.__typename, JSON.stringify(res)).toBe('Reauthentication');
    keepSecrets(res.data!.reauthenticate.accessToken);
    expect((await theEvent(t, rightIp, 'reauthentication', session.userId)).detail).toEqual({ method: 'password', sessionId: expect.any(String) });
  });

  it('second_factor_added, second_factor_failure, recovery_codes_regenerated, second_factor_removed (issue 14)', async () => {
    const session = await registerFrom(uniqueIp());
    await verifyAddressOf(t, session.accessToken); // adding a factor needs a verified address
    const [enrollIp, wrongIp, confirmIp, regenerateIp, disableIp] = [uniqueIp(), uniqueIp(), uniqueIp(), uniqueIp(), uniqueIp()];
    const { secret } = (await t.gql(ENROLL_TOTP, {}, from(enrollIp, session.accessToken))).data!.enrollTotp;
    keepSecrets(secret);
    const right = totpCode(secret, t.clock.now());
    const wrong = right === '000000' ? '111111' : '000000';
    keepSecrets(right, wrong);
    await t.gql(CONFIRM_TOTP, { code: wrong }, from(wrongIp, session.accessToken));
    expect((await theEvent(t, wrongIp, 'second_factor_failure', session.userId)).detail).toEqual({ use: 'confirm_totp', reason: 'wrong_code' });
    const confirmed = await t.gql(CONFIRM_TOTP, { code: right }, from(confirmIp, session.accessToken));
    keepSecrets(...confirmed.data!.confirmTotp.codes);
    expect((await theEvent(t, confirmIp, 'second_factor_added', session.userId)).detail).toMatchObject({ method: 'TOTP' });
    // Taking the factor away needs a session that passed it: a code of the next step.
    t.clock.advance(30);
    const next = totpCode(secret, t.clock.now());
    keepSecrets(next);
    const proved = await t.gql(REAUTHENTICATE, { code: next }, from(uniqueIp(), session.accessToken));
    const token = proved.data!.reauthenticate.accessToken as string;
    keepSecrets(token);
    const renewed = await t.gql(REGENERATE_RECOVERY_CODES, {}, from(regenerateIp, token));
    keepSecrets(...renewed.data!.regenerateRecoveryCodes.codes);
    await theEvent(t, regenerateIp, 'recovery_codes_regenerated', session.userId);
    expect((await t.gql(DISABLE_TOTP, {}, from(disableIp, token))).data?.disableTotp).toBe(true);
    expect((await theEvent(t, disableIp, 'second_factor_removed', session.userId)).detail).toMatchObject({ lastFactor: true });
  });

  it('email_verification_requested and email_verified (issue 4)', async () => {
    const session = await registerFrom(uniqueIp());
    const [askIp, verifyIp] = [uniqueIp(), uniqueIp()];
    expect((await t.gql(REQUEST_EMAIL_VERIFICATION, {}, from(askIp, session.accessToken))).data?.requestEmailVerification).toBe(true);
    const { token } = linkIn(await smtp.nextMailTo(session.email), 'verify-email');
    keepSecrets(token);
    await theEvent(t, askIp, 'email_verification_requested', session.userId);
    const res = await t.gql(VERIFY_EMAIL, { token }, from(verifyIp));
    expect(res.data?.verifyEmail.__typename, JSON.stringify(res)).toBe('User');
    await theEvent(t, verifyIp, 'email_verified', session.userId);
  });

  it('signing key transitions: created and activated, retired, removed, revoked, each with its kid and algorithm', async () => {
    // An ES256 app (the stored key set) on the same database; its clock moves alone.
    const app = await createTestApp({ JWT_SECRET: '', JWKS_MAX_AGE: '5', ACCESS_TOKEN_TTL: '10' }, database);
    try {
      const manager = app.services.signingKeys.manager!;
      const [first] = await manager.list();
      const second = await manager.rotate({ immediately: true });
      app.clock.advance(15); // past the first key's retention (ACCESS_TOKEN_TTL + JWKS_MAX_AGE)
      await manager.step();
      expect(await manager.retire(second)).toBe(true);
      const rows = await database.db.select().from(authEvents).where(inArray(authEvents.type, [...AUTH_EVENT_TYPES.filter((e) => e.startsWith('signing_key_'))]));
      const of = (kid: string) => rows.filter((r) => r.detail.kid === kid).map((r) => r.type).sort();
      expect(of(first!.kid)).toEqual(['signing_key_activated', 'signing_key_created', 'signing_key_removed', 'signing_key_retired']);
      expect(of(second)).toEqual(['signing_key_activated', 'signing_key_created', 'signing_key_revoked']);
      for (const row of rows) expect(row).toMatchObject({ userId: null, detail: { algorithm: 'ES256' } });
    } finally {
      await app.close();
    }
  });

  it('every event type the server knows has been recorded by the flows above', async () => {
    const rows = await database.db.selectDistinct({ type: authEvents.type }).from(authEvents);
    // Linking needs an OpenID Provider: test/graphql/social-sign-in.test.ts checks these events.
    const seen = new Set([...rows.map((r) => r.type), 'identity_linked', 'identity_link_failure', 'identity_unlinked']);
    expect(AUTH_EVENT_TYPES.filter((type) => !seen.has(type))).toEqual([]);
    expect([...seen].filter((type) => !(AUTH_EVENT_TYPES as readonly string[]).includes(type))).toEqual([]);
  });

  it('no row anywhere in the audit log holds a password, an access token, a refresh token or an emailed token', async () => {
    const rows = await database.db.select().from(authEvents);
    expect(rows.length).toBeGreaterThan(20);
    expect(secrets.size).toBeGreaterThan(10);
    expectNoSecrets(rows);
  });
});

const AUDIT = `query Audit($first: Int, $after: String, $userId: ID, $type: String) {
  auditEvents(first: $first, after: $after, userId: $userId, type: $type) {
    edges { cursor node { id createdAt type userId ip userAgent detail } }
    pageInfo { hasNextPage endCursor }
  }
}`;

async function audit(variables: Record<string, unknown>, token = admin.accessToken) {
  const res = await t.gql(AUDIT, variables, { token });
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!.auditEvents as {
    edges: Array<{ cursor: string; node: Record<string, any> }>;
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
  };
}

/** A user with four events a second apart: register, login_success, refresh, logout. */
async function userWithHistory() {
  const session = await registerFrom(uniqueIp());
  t.clock.advance(1);
  const login = await t.gql(LOGIN, { input: { email: session.email, password: GOOD_PASSWORD } }, from(uniqueIp()));
  keepSecrets(login.data!.login.accessToken, login.data!.login.refreshToken);
  t.clock.advance(1);
  const refreshed = await t.gql(REFRESH, { token: login.data!.login.refreshToken }, from(uniqueIp()));
  keepSecrets(refreshed.data!.refresh.accessToken, refreshed.data!.refresh.refreshToken);
  t.clock.advance(1);
  await t.gql(LOGOUT, {}, from(uniqueIp(), session.accessToken));
  t.clock.advance(1);
  return session;
}

describe('auditEvents query', () => {
  it('is UNAUTHENTICATED without a token', async () => {
    expectRefused(await t.gql(AUDIT, {}), 'auditEvents', 'UNAUTHENTICATED', { nullable: false });
  });

  it('is FORBIDDEN for a plain user, and for a user with other permissions', async () => {
    const plainUser = await registerUser(t);
    expectRefused(await t.gql(AUDIT, {}, { token: plainUser.accessToken }), 'auditEvents', 'FORBIDDEN', { nullable: false });
    const reader = await registerWithPermissions(t, ['users:read', 'sessions:revoke']);
    expectRefused(await t.gql(AUDIT, {}, { token: reader.accessToken }), 'auditEvents', 'FORBIDDEN', { nullable: false });
  });

  it('answers an admin, and any user holding audit:read', async () => {
    const page = await audit({ first: 5 });
    expect(page.edges.length).toBe(5);
    const auditor = await registerWithPermissions(t, ['audit:read']);
    expect((await audit({ first: 1 }, auditor.accessToken)).edges).toHaveLength(1);
  });

  it("lists a user's events newest first, with every field", async () => {
    const session = await userWithHistory();
    const page = await audit({ userId: session.userId });
    expect(page.edges.map((e) => e.node.type)).toEqual(['logout', 'refresh', 'login_success', 'register']);
    expect(page.pageInfo.hasNextPage).toBe(false);
    const times = page.edges.map((e) => Date.parse(e.node.createdAt));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    for (const { node } of page.edges) {
      expect(node).toMatchObject({ userId: session.userId, userAgent: UA, ip: expect.stringMatching(/^198\.1[89]\./) });
      expect(JSON.parse(node.detail)).toEqual(expect.any(Object));
    }
  });

  it('pages with first/after: no event twice, none left out, in order', async () => {
    const session = await userWithHistory();
    const first = await audit({ userId: session.userId, first: 3 });
    expect(first.edges.map((e) => e.node.type)).toEqual(['logout', 'refresh', 'login_success']);
    expect(first.pageInfo).toEqual({ hasNextPage: true, endCursor: first.edges[2]!.cursor });
    const second = await audit({ userId: session.userId, first: 3, after: first.pageInfo.endCursor });
    expect(second.edges.map((e) => e.node.type)).toEqual(['register']);
    expect(second.pageInfo.hasNextPage).toBe(false);
  });

  it('pages correctly through events recorded at the same instant', async () => {
    const session = await registerFrom(uniqueIp());
    t.clock.advance(1);
    // Five failures at one frozen instant.
    for (let i = 0; i < 5; i++) await t.gql(LOGIN, { input: { email: session.email, password: WRONG } }, from(uniqueIp()));
    const all = await audit({ userId: session.userId, type: 'login_failure' });
    expect(all.edges).toHaveLength(5);
    const ids: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 5; page++) {
      const res = await audit({ userId: session.userId, type: 'login_failure', first: 2, after });
      ids.push(...res.edges.map((e) => e.node.id));
      if (!res.pageInfo.hasNextPage) break;
      after = res.pageInfo.endCursor;
    }
    expect(ids).toEqual(all.edges.map((e) => e.node.id));
  });

  it('filters by userId and by type', async () => {
    const a = await userWithHistory();
    const b = await userWithHistory();
    const ofA = await audit({ userId: a.userId });
    expect(ofA.edges.every((e) => e.node.userId === a.userId)).toBe(true);
    expect(ofA.edges).toHaveLength(4);
    const refreshesOfB = await audit({ userId: b.userId, type: 'refresh' });
    expect(refreshesOfB.edges.map((e) => [e.node.type, e.node.userId])).toEqual([['refresh', b.userId]]);
    const registers = await audit({ type: 'register', first: 200 });
    expect(registers.edges.length).toBeGreaterThanOrEqual(2);
    expect(registers.edges.every((e) => e.node.type === 'register')).toBe(true);
    // Upper-case UUIDs name the same user.
    expect((await audit({ userId: a.userId.toUpperCase() })).edges).toHaveLength(4);
  });

  it('refuses a bad type, userId, cursor or page size with INVALID_INPUT', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ type: 'no_such_type' }, 'type'],
      [{ type: 'LOGIN_SUCCESS' }, 'type'],
      [{ userId: 'not-a-uuid' }, 'userId'],
      [{ userId: "1' or '1'='1" }, 'userId'],
      [{ after: 'not-a-cursor' }, 'after'],
      [{ first: 0 }, 'first'],
      [{ first: 201 }, 'first'],
    ];
    for (const [variables, field] of cases) {
      const res = await t.gql(AUDIT, variables, { token: admin.accessToken });
      const error = expectRefused(res, 'auditEvents', 'INVALID_INPUT', { nullable: false });
      expect(error.extensions?.field, JSON.stringify(variables)).toBe(field);
    }
  });
});

describe('audit retention', { timeout: OWN_DATABASE_TIMEOUT }, () => {
  it('purge deletes events older than AUDIT_RETENTION_DAYS (90) and keeps newer ones', async () => {
    const own = await openTestDatabase();
    try {
      const app = await createTestApp({}, own);
      const old = await registerUser(app);
      app.clock.advance(89 * 86_400);
      const recent = await registerUser(app);
      app.clock.advance(2 * 86_400); // old: 91 days; recent: 2 days
      const counts = await purgeExpired(app.services);
      expect(counts.auditEvents).toBe(1);
      expect(await eventsOfUser(app, old.userId)).toEqual([]);
      expect((await eventsOfUser(app, recent.userId)).map((e) => e.type)).toEqual(['register']);
      // 89 days later still (recent: 91 days), it goes too.
      app.clock.advance(89 * 86_400);
      expect((await purgeExpired(app.services)).auditEvents).toBe(1);
      expect(await own.db.select().from(authEvents)).toEqual([]);
    } finally {
      await own.close();
    }
  });

  it('follows AUDIT_RETENTION_DAYS', async () => {
    const own = await openTestDatabase();
    try {
      const app = await createTestApp({ AUDIT_RETENTION_DAYS: '7' }, own);
      const old = await registerUser(app);
      app.clock.advance(6 * 86_400);
      const recent = await registerUser(app);
      app.clock.advance(2 * 86_400); // old: 8 days; recent: 2 days
      expect((await purgeExpired(app.services)).auditEvents).toBe(1);
      expect(await eventsOfUser(app, old.userId)).toEqual([]);
      expect(await own.db.select({ type: authEvents.type }).from(authEvents).where(eq(authEvents.userId, recent.userId))).toEqual([
        { type: 'register' },
      ]);
    } finally {
      await own.close();
    }
  });
});
