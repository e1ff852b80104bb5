import argon2 from 'argon2';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DatabaseHandle } from '../../src/db/client.js';
import { expectRateLimited, loginFrom, storedHits, uniqueIp } from '../support/abuse.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { onPostgres, openTestDatabase } from '../support/database.js';
import { GOOD_PASSWORD, LOGIN, REFRESH, registerUser } from '../support/operations.js';

/** Sets `app`'s frozen clock to `reference`'s, so both instances are in the same window. */
function alignClock(app: TestApp, reference: TestApp) {
  app.clock.advance((reference.clock.now().getTime() - app.clock.now().getTime()) / 1000);
}

// Two server instances (two apps, two services, one PostgreSQL database): the limits and the
// lockout live in the database, so they must hold across both.
describe.runIf(onPostgres)('rate limits shared by two instances on one PostgreSQL', () => {
  const LIMITED = { RATE_LIMITS: 'on', RATE_LIMIT_LOGIN_IP: '4/60', RATE_LIMIT_LOGIN_ACCOUNT: '1000/900', RATE_LIMIT_REFRESH_IP: '3/60' };
  let database: DatabaseHandle;
  let a: TestApp;
  let b: TestApp;
  let lockA: TestApp; // lockout defaults
  let lockB: TestApp;
  beforeAll(async () => {
    database = await openTestDatabase();
    a = await createTestApp(LIMITED, database);
    b = await createTestApp(LIMITED, database);
    lockA = await createTestApp({ RATE_LIMITS: 'on' }, database);
    lockB = await createTestApp({ RATE_LIMITS: 'on' }, database);
    for (const app of [b, lockA, lockB]) alignClock(app, a);
  });
  afterAll(async () => {
    await database?.close();
  });

  it('counts logins from one IP across both instances: alternating, the 5th overall is limited (4/60)', async () => {
    const { email } = await registerUser(a);
    const ip = uniqueIp();
    const order = [a, b, a, b];
    for (const [i, app] of order.entries()) {
      expect((await loginFrom(app, email, GOOD_PASSWORD, ip)).__typename, `login ${i + 1}`).toBe('AuthPayload');
    }
    const retryAfter = expectRateLimited(await loginFrom(a, email, GOOD_PASSWORD, ip));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(expectRateLimited(await loginFrom(b, email, GOOD_PASSWORD, ip))).toBe(retryAfter);
    expect(await storedHits(a, 'LOGIN_IP', ip)).toBe(6);
  });

  it('lets exactly 4 of 20 simultaneous logins from one IP, split across both instances, through', async () => {
    const { email } = await registerUser(a);
    const ip = uniqueIp();
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 === 0 ? a : b).gql(LOGIN, { input: { email, password: `wrong-password-${i}` } }, { ip }),
      ),
    );
    const types = answers.map((res) => {
      expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
      return res.data!.login.__typename as string;
    });
    expect(types.filter((type) => type === 'InvalidCredentialsError')).toHaveLength(4);
    expect(types.filter((type) => type === 'RateLimitedError')).toHaveLength(16);
    expect(await storedHits(a, 'LOGIN_IP', ip)).toBe(20);
  });

  it('lets exactly 4 of 20 simultaneous right-password logins from one IP, split across both instances, through', async () => {
    const { email } = await registerUser(a);
    const ip = uniqueIp();
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).gql(LOGIN, { input: { email, password: GOOD_PASSWORD } }, { ip })),
    );
    const types = answers.map((res) => {
      expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
      return res.data!.login.__typename as string;
    });
    expect(types.filter((type) => type === 'AuthPayload')).toHaveLength(4);
    expect(types.filter((type) => type === 'RateLimitedError')).toHaveLength(16);
  });

  it('counts refreshes across both instances too (3/60)', async () => {
    const ip = uniqueIp();
    const refresh = async (app: TestApp) => (await app.gql(REFRESH, { token: 'bogus.token' }, { ip })).data!.refresh;
    expect((await refresh(a)).__typename).toBe('InvalidRefreshTokenError');
    expect((await refresh(b)).__typename).toBe('InvalidRefreshTokenError');
    expect((await refresh(a)).__typename).toBe('InvalidRefreshTokenError');
    expectRateLimited(await refresh(b));
  });

  it('shares the lockout: failures on both instances add up, and the block holds on both', async () => {
    const { email } = await registerUser(lockA);
    for (let i = 0; i < 5; i++) {
      const app = i % 2 === 0 ? lockA : lockB;
      expect((await loginFrom(app, email, 'wrong-password-1', uniqueIp())).__typename).toBe('InvalidCredentialsError');
    }
    // 5 failures within 900 s: blocked until the oldest leaves the window, on both instances.
    expect(expectRateLimited(await loginFrom(lockB, email, GOOD_PASSWORD, uniqueIp()))).toBe(900);
    expect(expectRateLimited(await loginFrom(lockA, email, GOOD_PASSWORD, uniqueIp()))).toBe(900);
    lockA.clock.advance(899);
    lockB.clock.advance(899);
    expect(expectRateLimited(await loginFrom(lockA, email, GOOD_PASSWORD, uniqueIp()))).toBe(1);
    lockA.clock.advance(1);
    lockB.clock.advance(1);
    expect((await loginFrom(lockB, email, GOOD_PASSWORD, uniqueIp())).__typename).toBe('AuthPayload');
    // The success on one instance reset the count for both: 4 failures on A do not lock B.
    for (let i = 0; i < 4; i++) await loginFrom(lockA, email, 'wrong-password-1', uniqueIp());
    expect((await loginFrom(lockB, email, GOOD_PASSWORD, uniqueIp())).__typename).toBe('AuthPayload');
  });

  it('escalates once under concurrent failures on both instances: 900 s, then one failure locks for 120 s, not 240', async () => {
    const { email } = await registerUser(lockA);
    // Exactly 5 concurrent failures, split across the instances: all checked, one lock.
    const answers = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        (i % 2 === 0 ? lockA : lockB).gql(LOGIN, { input: { email, password: `wrong-${i}` } }, { ip: uniqueIp() }),
      ),
    );
    expect(answers.map((res) => res.data?.login.__typename)).toEqual(Array(5).fill('InvalidCredentialsError'));
    expect(expectRateLimited(await loginFrom(lockA, email, GOOD_PASSWORD, uniqueIp()))).toBe(900);
    expect(expectRateLimited(await loginFrom(lockB, email, GOOD_PASSWORD, uniqueIp()))).toBe(900);
    lockA.clock.advance(900);
    lockB.clock.advance(900);
    expect((await loginFrom(lockB, email, 'wrong-password-1', uniqueIp())).__typename).toBe('InvalidCredentialsError');
    expect(expectRateLimited(await loginFrom(lockA, email, GOOD_PASSWORD, uniqueIp()))).toBe(120);
    expect(expectRateLimited(await loginFrom(lockB, email, GOOD_PASSWORD, uniqueIp()))).toBe(120);
  });

  it('once a block ends, 10 concurrent wrong passwords split across both instances get exactly one password check, and lock for 120 s', async () => {
    const { email } = await registerUser(lockA);
    for (let i = 0; i < 5; i++) await loginFrom(i % 2 === 0 ? lockA : lockB, email, 'wrong-password-1', uniqueIp());
    expect(expectRateLimited(await loginFrom(lockA, email, GOOD_PASSWORD, uniqueIp()))).toBe(900);
    lockA.clock.advance(900);
    lockB.clock.advance(900);

    const verify = vi.spyOn(argon2, 'verify');
    try {
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 === 0 ? lockA : lockB).gql(LOGIN, { input: { email, password: `wrong-${i}` } }, { ip: uniqueIp() }),
        ),
      );
      const types = answers.map((res) => {
        expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
        return res.data!.login.__typename as string;
      });
      // The streak goes on: one guess, not another five, however the guesses are timed.
      expect(types.filter((type) => type === 'InvalidCredentialsError')).toHaveLength(1);
      expect(types.filter((type) => type === 'RateLimitedError')).toHaveLength(9);
      expect(verify).toHaveBeenCalledTimes(1);
      for (const res of answers) {
        if (res.data!.login.__typename === 'RateLimitedError') expect(expectRateLimited(res.data!.login)).toBe(120);
      }
    } finally {
      verify.mockRestore();
    }
    expect(expectRateLimited(await loginFrom(lockA, email, GOOD_PASSWORD, uniqueIp()))).toBe(120);
    expect(expectRateLimited(await loginFrom(lockB, email, GOOD_PASSWORD, uniqueIp()))).toBe(120);
  });
});
