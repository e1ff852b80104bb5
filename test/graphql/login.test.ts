import argon2 from 'argon2';
import { eq } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { users } from '../../src/db/schema.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { GOOD_PASSWORD, LOGIN, ME, registerUser, uniqueEmail } from '../support/operations.js';
import { sessionsOf, userRow } from '../support/rows.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(() => t.close());
afterEach(() => {
  vi.restoreAllMocks();
});

/**
 * The algorithm and parameters of a PHC-encoded argon2 hash, e.g. `$argon2id$v=19$m=19456,p=1,t=2$…`
 * gives `{ type: 'argon2id', v: 19, m: 19456, t: 2, p: 1 }` (node-argon2 writes them as m,p,t).
 */
function argon2Params(hash: string) {
  const match = /^\$(argon2(?:id|i|d))\$v=(\d+)\$([^$]+)\$/.exec(hash);
  if (!match) throw new Error(`not an argon2 hash: ${hash}`);
  const params = Object.fromEntries(match[3]!.split(',').map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));
  return { type: match[1], v: Number(match[2]), ...params };
}
/** OWASP: argon2id, 19 MiB, 2 passes, 1 lane. */
const CURRENT_PARAMS = { type: 'argon2id', v: 19, m: 19456, t: 2, p: 1 };

async function login(email: string, password: string, options?: Parameters<TestApp['gql']>[2]) {
  const res = await t.gql(LOGIN, { input: { email, password } }, options);
  expect(res.errors).toBeUndefined();
  return res.data?.login;
}

async function setActive(userId: string, active: boolean) {
  await t.database.db.update(users).set({ active }).where(eq(users.id, userId));
  await t.services.changes.sync();
}

describe('login', () => {
  it('signs in with the right email and password and returns a working AuthPayload', async () => {
    const { email, userId } = await registerUser(t);
    const payload = await login(email, GOOD_PASSWORD);
    expect(payload).toMatchObject({ __typename: 'AuthPayload', tokenType: 'Bearer', refreshExpiresIn: 604800 });
    // ACCESS_TOKEN_TTL is 900 s; `exp` has whole-second precision, so up to a second less remains.
    expect(payload.expiresIn).toBeGreaterThanOrEqual(899);
    expect(payload.expiresIn).toBeLessThanOrEqual(900);
    expect(payload.user).toMatchObject({ id: userId, email, roles: ['user'], active: true });
    const me = await t.gql(ME, {}, { token: payload.accessToken });
    expect(me.data?.me.id).toBe(userId);
  });

  it('answers the same InvalidCredentialsError, with the same message, for an unknown email and a wrong password', async () => {
    const { email } = await registerUser(t);
    const unknown = await login(uniqueEmail('nobody'), GOOD_PASSWORD);
    const wrong = await login(email, `${GOOD_PASSWORD}x`);
    expect(unknown).toEqual({ __typename: 'InvalidCredentialsError', code: 'INVALID_CREDENTIALS', message: expect.any(String) });
    expect(wrong).toEqual(unknown);
  });

  it('runs one argon2 verification for an unknown email, as for a wrong password', async () => {
    const { email } = await registerUser(t);
    const verify = vi.spyOn(argon2, 'verify');
    const unknown = await login(uniqueEmail('nobody'), GOOD_PASSWORD);
    expect(unknown.__typename).toBe('InvalidCredentialsError');
    expect(verify).toHaveBeenCalledTimes(1);
    // The dummy hash costs what a real one costs.
    expect(argon2Params(verify.mock.calls[0]![0])).toEqual(CURRENT_PARAMS);

    verify.mockClear();
    const wrong = await login(email, 'not-the-password-1');
    expect(wrong.__typename).toBe('InvalidCredentialsError');
    expect(verify).toHaveBeenCalledTimes(1);
  });

  it('compares passwords exactly: a trailing space, another case or a prefix is refused', async () => {
    const { email } = await registerUser(t);
    for (const password of [
      `${GOOD_PASSWORD} `,
      ` ${GOOD_PASSWORD}`,
      GOOD_PASSWORD.toUpperCase(),
      GOOD_PASSWORD.toLowerCase(),
      GOOD_PASSWORD.slice(0, -1),
      GOOD_PASSWORD.slice(0, 8),
    ]) {
      const payload = await login(email, password);
      expect(payload, JSON.stringify(password)).toMatchObject({ __typename: 'InvalidCredentialsError', code: 'INVALID_CREDENTIALS' });
    }
    expect((await login(email, GOOD_PASSWORD)).__typename).toBe('AuthPayload');
  });

  it('does not truncate long passwords: one differing after byte 72 is refused', async () => {
    const password = `${'Zr8!qW3#nB6@'.repeat(8)}tail`; // 100 characters
    const { email } = await registerUser(t, { password });
    const payload = await login(email, `${password.slice(0, 96)}TAIL`);
    expect(payload.__typename).toBe('InvalidCredentialsError');
    expect((await login(email, password)).__typename).toBe('AuthPayload');
  });

  it('normalizes the email on login (upper case and surrounding spaces)', async () => {
    const { email, userId } = await registerUser(t);
    const payload = await login(`  ${email.toUpperCase()}  `, GOOD_PASSWORD);
    expect(payload.__typename).toBe('AuthPayload');
    expect(payload.user.id).toBe(userId);
    expect(payload.user.email).toBe(email);
  });

  it('answers AccountDisabledError to a disabled user with the right password', async () => {
    const { email, userId } = await registerUser(t);
    await setActive(userId, false);
    const payload = await login(email, GOOD_PASSWORD);
    expect(payload).toEqual({ __typename: 'AccountDisabledError', code: 'ACCOUNT_DISABLED', message: expect.any(String) });
    expect(await sessionsOf(t, userId)).toHaveLength(1); // only the one opened by register
  });

  it('answers InvalidCredentialsError to a disabled user with a wrong password', async () => {
    const { email, userId } = await registerUser(t);
    await setActive(userId, false);
    const payload = await login(email, `${GOOD_PASSWORD}!`);
    expect(payload).toMatchObject({ __typename: 'InvalidCredentialsError', code: 'INVALID_CREDENTIALS' });
  });

  it('opens a new session on each login, with a different refresh token', async () => {
    const { email, userId } = await registerUser(t);
    const first = await login(email, GOOD_PASSWORD, { ip: '198.51.100.1', headers: { 'user-agent': 'First/1' } });
    const second = await login(email, GOOD_PASSWORD, { ip: '198.51.100.2', headers: { 'user-agent': 'Second/2' } });
    expect(first.__typename).toBe('AuthPayload');
    expect(second.__typename).toBe('AuthPayload');
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect(second.accessToken).not.toBe(first.accessToken);
    const rows = await sessionsOf(t, userId);
    expect(rows).toHaveLength(3); // register + two logins
    expect(rows.map((s) => [s.ip, s.userAgent]).sort()).toEqual([
      ['127.0.0.1', null],
      ['198.51.100.1', 'First/1'],
      ['198.51.100.2', 'Second/2'],
    ]);
    // Both sessions stay usable.
    expect((await t.gql(ME, {}, { token: first.accessToken })).data?.me.id).toBe(userId);
    expect((await t.gql(ME, {}, { token: second.accessToken })).data?.me.id).toBe(userId);
  });

  it('re-hashes a password hashed with other argon2 parameters on the next successful login', async () => {
    const { email, userId } = await registerUser(t);
    const weak = await argon2.hash(GOOD_PASSWORD, { type: argon2.argon2id, memoryCost: 4096, timeCost: 1, parallelism: 1 });
    expect(argon2Params(weak)).toEqual({ ...CURRENT_PARAMS, m: 4096, t: 1 });
    await t.database.db.update(users).set({ passwordHash: weak }).where(eq(users.id, userId));

    // A failed login leaves it alone.
    expect((await login(email, 'wrong-password-9')).__typename).toBe('InvalidCredentialsError');
    expect((await userRow(t, userId)).passwordHash).toBe(weak);

    expect((await login(email, GOOD_PASSWORD)).__typename).toBe('AuthPayload');
    const rehashed = (await userRow(t, userId)).passwordHash!;
    expect(argon2Params(rehashed)).toEqual(CURRENT_PARAMS);
    expect(await argon2.verify(rehashed, GOOD_PASSWORD)).toBe(true);
    expect((await login(email, GOOD_PASSWORD)).__typename).toBe('AuthPayload');
  });

  it('re-hashes an argon2i hash with the current parameters to argon2id on the next successful login', async () => {
    const { email, userId } = await registerUser(t);
    const other = await argon2.hash(GOOD_PASSWORD, { type: argon2.argon2i, memoryCost: 19_456, timeCost: 2, parallelism: 1 });
    expect(other.startsWith('$argon2i$')).toBe(true);
    await t.database.db.update(users).set({ passwordHash: other }).where(eq(users.id, userId));
    expect((await login(email, GOOD_PASSWORD)).__typename).toBe('AuthPayload');
    const rehashed = (await userRow(t, userId)).passwordHash!;
    expect(rehashed.startsWith('$argon2id$')).toBe(true);
    expect(argon2Params(rehashed)).toEqual(CURRENT_PARAMS);
  });

  it('keeps a hash made with the current parameters unchanged on login', async () => {
    const { email, userId } = await registerUser(t);
    const stored = (await userRow(t, userId)).passwordHash!;
    expect(argon2Params(stored)).toEqual(CURRENT_PARAMS);
    expect((await login(email, GOOD_PASSWORD)).__typename).toBe('AuthPayload');
    expect((await userRow(t, userId)).passwordHash).toBe(stored);
  });

  it('answers InputError on field password to an empty password', async () => {
    const { email } = await registerUser(t);
    const verify = vi.spyOn(argon2, 'verify');
    const payload = await login(email, '');
    expect(payload).toMatchObject({ __typename: 'InputError', code: 'INVALID_INPUT', field: 'password' });
    expect(verify).not.toHaveBeenCalled();
  });

  it('answers InputError on field email to an empty email', async () => {
    const payload = await login('   ', GOOD_PASSWORD);
    expect(payload).toMatchObject({ __typename: 'InputError', code: 'INVALID_INPUT', field: 'email' });
  });

  it('answers InputError on field password to a password over 256 characters', async () => {
    const { email } = await registerUser(t);
    const payload = await login(email, 'x'.repeat(257));
    expect(payload).toMatchObject({ __typename: 'InputError', field: 'password' });
  });

  it('still signs in when a bad access token is sent along', async () => {
    const { email } = await registerUser(t);
    expect((await login(email, GOOD_PASSWORD, { token: 'not-a-jwt' })).__typename).toBe('AuthPayload');
  });

  it('records the last login time', async () => {
    const { email, userId } = await registerUser(t);
    t.clock.advance(60);
    expect((await login(email, GOOD_PASSWORD)).__typename).toBe('AuthPayload');
    expect((await userRow(t, userId)).lastLoginAt?.getTime()).toBe(t.clock.now().getTime());
  });
});
