import argon2 from 'argon2';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DatabaseHandle } from '../../src/db/client.js';
import { purgeExpired } from '../../src/purge.js';
import { eventsFromIp, expectRateLimited, loginFrom, uniqueIp } from '../support/abuse.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { openTestDatabase } from '../support/database.js';
import { GOOD_PASSWORD, LOGIN, registerUser, uniqueEmail } from '../support/operations.js';

const WRONG = 'not-the-password-9';

// `plain` (limits off) registers users; `t` has every default (5 failures / 900 s, 60 s doubling
// to 900 s); `short` has LOCKOUT_BASE=10, LOCKOUT_MAX=25 and locks at the first failure.
let database: DatabaseHandle;
let plain: TestApp;
let t: TestApp;
let short: TestApp;
beforeAll(async () => {
  database = await openTestDatabase();
  plain = await createTestApp({}, database);
  t = await createTestApp({ RATE_LIMITS: 'on' }, database);
  short = await createTestApp(
    { RATE_LIMITS: 'on', LOCKOUT_BASE: '10', LOCKOUT_MAX: '25', RATE_LIMIT_LOGIN_ACCOUNT: '1/900' },
    database,
  );
});
afterAll(async () => {
  await database?.close();
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** `count` wrong passwords for an email, each from a fresh address (so no IP limit is involved); returns the answers' types. */
async function failLogins(app: TestApp, email: string, count: number, password = WRONG): Promise<string[]> {
  const answers: string[] = [];
  for (let i = 0; i < count; i++) answers.push((await loginFrom(app, email, password, uniqueIp())).__typename);
  return answers;
}

/** The answer to the right password, from a fresh address. */
const rightPassword = (app: TestApp, email: string) => loginFrom(app, email, GOOD_PASSWORD, uniqueIp());

describe('account lockout', () => {
  it('locks an email after 5 wrong passwords from 5 IPs: the 6th attempt, with the right password, answers RateLimitedError (retryAfter 60) without verifying', async () => {
    const { email } = await registerUser(plain);
    expect(await failLogins(t, email, 5)).toEqual(Array(5).fill('InvalidCredentialsError'));
    const verify = vi.spyOn(argon2, 'verify');
    const retryAfter = expectRateLimited(await rightPassword(t, email));
    expect(retryAfter).toBe(60);
    expect(verify).not.toHaveBeenCalled();
    // A wrong password while locked gets the same answer, also without a verification.
    expect(expectRateLimited(await loginFrom(t, email, WRONG, uniqueIp()))).toBe(60);
    expect(verify).not.toHaveBeenCalled();
  });

  it('does not lock after 4 wrong passwords', async () => {
    const { email } = await registerUser(plain);
    await failLogins(t, email, 4);
    expect((await rightPassword(t, email)).__typename).toBe('AuthPayload');
  });

  it('retryAfter counts down while locked, and the right password works after 61 s', async () => {
    const { email } = await registerUser(plain);
    await failLogins(t, email, 5);
    t.clock.advance(45);
    expect(expectRateLimited(await rightPassword(t, email))).toBe(15);
    t.clock.advance(16);
    expect((await rightPassword(t, email)).__typename).toBe('AuthPayload');
  });

  it('a successful login resets the failure count: 4 more wrong passwords do not lock', async () => {
    const { email } = await registerUser(plain);
    await failLogins(t, email, 5);
    t.clock.advance(61);
    expect((await rightPassword(t, email)).__typename).toBe('AuthPayload');
    expect(await failLogins(t, email, 4)).toEqual(Array(4).fill('InvalidCredentialsError'));
    expect((await rightPassword(t, email)).__typename).toBe('AuthPayload');
    // Failures before a success never add up with failures after it.
    await failLogins(t, email, 4);
    expect((await rightPassword(t, email)).__typename).toBe('AuthPayload');
  });

  it('escalates within the window: once a lockout ends, the next failure locks again for twice as long', async () => {
    const { email } = await registerUser(plain);
    expect(await failLogins(t, email, 5)).toEqual(Array(5).fill('InvalidCredentialsError'));
    expect(expectRateLimited(await rightPassword(t, email))).toBe(60);
    for (const expected of [120, 240, 480]) {
      t.clock.advance(expected / 2 - 1);
      expect(expectRateLimited(await rightPassword(t, email))).toBe(1);
      t.clock.advance(1);
      // One guess, not another five: the 900 s window of the first failures still runs.
      expect(await failLogins(t, email, 1)).toEqual(['InvalidCredentialsError']);
      expect(expectRateLimited(await rightPassword(t, email)), `lockout of ${expected} s`).toBe(expected);
    }
  });

  it('caps the lockout at LOCKOUT_MAX (900) and never locks for good', async () => {
    const { email } = await registerUser(plain);
    const locks: number[] = [];
    for (let i = 0; i < 7; i++) {
      const answers = await failLogins(t, email, 5);
      expect(answers[0]).toBe('InvalidCredentialsError');
      const retryAfter = expectRateLimited(await rightPassword(t, email));
      locks.push(retryAfter);
      t.clock.advance(retryAfter);
    }
    expect(locks.at(-1)).toBe(900);
    expect(Math.max(...locks)).toBe(900);
    expect((await rightPassword(t, email)).__typename).toBe('AuthPayload');
  });

  it('checks at most 8 wrong passwords for one email in 15 minutes at the defaults (5, then one per lockout)', async () => {
    const { email } = await registerUser(plain);
    let checked = 0;
    for (let second = 0; second < 900; second += 5) {
      const [answer] = await failLogins(t, email, 1);
      if (answer === 'InvalidCredentialsError') checked += 1;
      else expect(answer).toBe('RateLimitedError');
      t.clock.advance(5);
    }
    // 5 failures lock for 60 s; then one failure each after the 60, 120 and 240 s lockouts;
    // the 480 s lockout runs to the end of the window.
    expect(checked).toBe(8);
  });

  it('a successful login resets the escalation: the next lockout is LOCKOUT_BASE again', async () => {
    const { email } = await registerUser(plain);
    await failLogins(t, email, 5);
    expect(expectRateLimited(await rightPassword(t, email))).toBe(60);
    t.clock.advance(60);
    await failLogins(t, email, 5);
    expect(expectRateLimited(await rightPassword(t, email))).toBe(120);
    t.clock.advance(120);
    expect((await rightPassword(t, email)).__typename).toBe('AuthPayload');
    await failLogins(t, email, 5);
    expect(expectRateLimited(await rightPassword(t, email))).toBe(60);
  });

  it('follows LOCKOUT_BASE and LOCKOUT_MAX (10, 20, 25, 25) and RATE_LIMIT_LOGIN_ACCOUNT (here 1 failure)', async () => {
    const { email } = await registerUser(plain);
    for (const expected of [10, 20, 25, 25]) {
      expect(await failLogins(short, email, 1)).toEqual(['InvalidCredentialsError']);
      expect(expectRateLimited(await rightPassword(short, email))).toBe(expected);
      short.clock.advance(expected);
    }
    expect((await rightPassword(short, email)).__typename).toBe('AuthPayload');
  });

  it('counts failures within RATE_LIMIT_LOGIN_ACCOUNT seconds only: 4 failures, 901 s, 4 failures do not lock', async () => {
    const { email } = await registerUser(plain);
    await failLogins(t, email, 4);
    t.clock.advance(901);
    await failLogins(t, email, 4);
    expect((await rightPassword(t, email)).__typename).toBe('AuthPayload');
  });

  it('locks an unknown email exactly like a real one: the same answer, field by field', async () => {
    const { email: real } = await registerUser(plain);
    const unknown = uniqueEmail('nobody');
    const realFailures = await failLogins(t, real, 5);
    const unknownFailures = await failLogins(t, unknown, 5);
    expect(unknownFailures).toEqual(realFailures);

    const query = `mutation Login($input: LoginInput!) {
      login(input: $input) { __typename ... on Error { code message } ... on RateLimitedError { retryAfter } }
    }`;
    const realAnswer = await t.gql(query, { input: { email: real, password: GOOD_PASSWORD } }, { ip: uniqueIp() });
    const unknownAnswer = await t.gql(query, { input: { email: unknown, password: GOOD_PASSWORD } }, { ip: uniqueIp() });
    expect(realAnswer.data?.login).toEqual({
      __typename: 'RateLimitedError',
      code: 'RATE_LIMITED',
      message: 'Too many attempts. Try again in 60 seconds.',
      retryAfter: 60,
    });
    expect(JSON.stringify(unknownAnswer)).toBe(JSON.stringify(realAnswer));
    expect(unknownAnswer.status).toBe(realAnswer.status);
  });

  it('shares one lockout between spellings of an email that normalize alike (case, whitespace, NFKC)', async () => {
    const { email } = await registerUser(plain); // user-<hex>@example.com
    const [local, domain] = email.split('@') as [string, string];
    const variants = [
      email.toUpperCase(),
      `  ${email}  `,
      `${local[0]!.toUpperCase()}${local.slice(1)}@${domain.toUpperCase()}`,
      `\t${email}\n`,
      // Fullwidth letters normalize (NFKC) to ASCII.
      `${String.fromCharCode(local.charCodeAt(0) - 0x61 + 0xff41)}${local.slice(1)}@${domain}`,
    ];
    for (const variant of variants) {
      expect((await loginFrom(t, variant, WRONG, uniqueIp())).__typename, variant).toBe('InvalidCredentialsError');
    }
    expect(expectRateLimited(await rightPassword(t, email))).toBe(60);
    expect(expectRateLimited(await loginFrom(t, email.toUpperCase(), GOOD_PASSWORD, uniqueIp()))).toBe(60);
  });

  it('locks only that email: another account on the same address signs in', async () => {
    const [a, b] = [await registerUser(plain), await registerUser(plain)];
    await failLogins(t, a.email, 5);
    expectRateLimited(await rightPassword(t, a.email));
    const ip = uniqueIp();
    expect((await loginFrom(t, b.email, GOOD_PASSWORD, ip)).__typename).toBe('AuthPayload');
  });

  it('records a lockout audit event (with its length) when an email gets locked', async () => {
    const { email } = await registerUser(plain);
    const ips = [uniqueIp(), uniqueIp(), uniqueIp(), uniqueIp(), uniqueIp()];
    for (const ip of ips) await loginFrom(t, email, WRONG, ip);
    const lockouts = await eventsFromIp(t, ips[4]!, ['lockout']);
    expect(lockouts).toHaveLength(1);
    expect(lockouts[0]!.detail).toEqual({ seconds: 60 });
    for (const ip of ips.slice(0, 4)) expect(await eventsFromIp(t, ip, ['lockout'])).toHaveLength(0);
  });

  it('forgets the escalation once the purge finds the email quiet for longer than LOCKOUT_MAX', async () => {
    const app = await createTestApp({ RATE_LIMITS: 'on' }, database);
    const { email } = await registerUser(plain);
    await failLogins(app, email, 5);
    expect(expectRateLimited(await rightPassword(app, email))).toBe(60);
    app.clock.advance(60 + 900 + 1);
    expect((await purgeExpired(app.services)).lockouts).toBeGreaterThanOrEqual(1);
    await failLogins(app, email, 5);
    expect(expectRateLimited(await rightPassword(app, email))).toBe(60);
  });

  it('with RATE_LIMITS=off there is no lockout', async () => {
    const { email } = await registerUser(plain);
    await failLogins(plain, email, 12);
    expect((await loginFrom(plain, email, GOOD_PASSWORD, uniqueIp())).__typename).toBe('AuthPayload');
  });

  it('concurrent wrong passwords for one email get at most RATE_LIMIT_LOGIN_ACCOUNT (5) password checks before the lock', async () => {
    const { email } = await registerUser(plain);
    const verify = vi.spyOn(argon2, 'verify');
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        t.gql(LOGIN, { input: { email, password: `${WRONG}-${i}` } }, { ip: uniqueIp() }),
      ),
    );
    const types = answers.map((a) => a.data?.login.__typename);
    // Every attempt is answered, and the email ends up locked.
    expect(types.every((type) => type === 'InvalidCredentialsError' || type === 'RateLimitedError')).toBe(true);
    expectRateLimited(await rightPassword(t, email));
    // Five guesses per lockout, however they are timed: an attacker with many addresses must
    // not get 20 guesses by sending them at once.
    expect(verify.mock.calls.length, `${verify.mock.calls.length} passwords were checked`).toBeLessThanOrEqual(5);
    expect(types.filter((type) => type === 'InvalidCredentialsError').length).toBeLessThanOrEqual(5);
  });
});
