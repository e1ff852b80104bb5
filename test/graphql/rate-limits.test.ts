import argon2 from 'argon2';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { configErrorOf } from '../support/config.js';
import { purgeExpired } from '../../src/purge.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import type { DatabaseHandle } from '../../src/db/client.js';
import { eventsFromIp, expectRateLimited, loginFrom, storedHits, uniqueIp } from '../support/abuse.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { openTestDatabase } from '../support/database.js';
import { GOOD_PASSWORD, REFRESH, REGISTER, registerUser, uniqueEmail } from '../support/operations.js';
import { countUsers } from '../support/rows.js';

// One database; apps with different limits on it. `plain` (limits off) sets up users, so that
// setting up never spends the limits under test.
let database: DatabaseHandle;
let plain: TestApp;
let t: TestApp; // RATE_LIMITS=on, every default
let small: TestApp; // RATE_LIMIT_LOGIN_IP=3/60
beforeAll(async () => {
  database = await openTestDatabase();
  plain = await createTestApp({}, database);
  t = await createTestApp({ RATE_LIMITS: 'on' }, database);
  small = await createTestApp({ RATE_LIMITS: 'on', RATE_LIMIT_LOGIN_IP: '3/60' }, database);
});
afterAll(async () => {
  await database?.close();
});
afterEach(() => {
  vi.restoreAllMocks();
});

async function register(app: TestApp, email: string, ip: string, password = GOOD_PASSWORD) {
  const res = await app.gql(REGISTER, { input: { email, password } }, { ip });
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!.register as Record<string, any>;
}

async function refresh(app: TestApp, token: string, ip: string) {
  const res = await app.gql(REFRESH, { token }, { ip });
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!.refresh as Record<string, any>;
}

describe('rate limit on login (per IP)', () => {
  it('answers the 11th login from one IP within a minute with RateLimitedError (default 10/60), retryAfter 1..60', async () => {
    const { email } = await registerUser(plain);
    const ip = uniqueIp();
    for (let i = 1; i <= 10; i++) {
      expect((await loginFrom(t, email, GOOD_PASSWORD, ip)).__typename, `login ${i}`).toBe('AuthPayload');
    }
    const retryAfter = expectRateLimited(await loginFrom(t, email, GOOD_PASSWORD, ip));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(await storedHits(t, 'LOGIN_IP', ip)).toBe(11);
  });

  it('leaves other IPs unaffected when one IP is over the login limit', async () => {
    const { email } = await registerUser(plain);
    const [noisy, other] = [uniqueIp(), uniqueIp()];
    for (let i = 0; i < 3; i++) await loginFrom(small, email, 'wrong-password-1', noisy);
    expectRateLimited(await loginFrom(small, email, GOOD_PASSWORD, noisy));
    expect((await loginFrom(small, email, GOOD_PASSWORD, other)).__typename).toBe('AuthPayload');
    expectRateLimited(await loginFrom(small, email, GOOD_PASSWORD, noisy));
  });

  it('counts every login execution, successful or not, wrong passwords and unknown emails alike', async () => {
    const { email } = await registerUser(plain);
    const ip = uniqueIp();
    expect((await loginFrom(small, email, GOOD_PASSWORD, ip)).__typename).toBe('AuthPayload');
    expect((await loginFrom(small, email, 'wrong-password-1', ip)).__typename).toBe('InvalidCredentialsError');
    expect((await loginFrom(small, uniqueEmail('nobody'), GOOD_PASSWORD, ip)).__typename).toBe('InvalidCredentialsError');
    expectRateLimited(await loginFrom(small, email, GOOD_PASSWORD, ip));
  });

  it('RATE_LIMIT_LOGIN_IP=3/60 refuses the 4th login with a retryAfter within the minute', async () => {
    const { email } = await registerUser(plain);
    const ip = uniqueIp();
    for (let i = 0; i < 3; i++) expect((await loginFrom(small, email, GOOD_PASSWORD, ip)).__typename).toBe('AuthPayload');
    const retryAfter = expectRateLimited(await loginFrom(small, email, GOOD_PASSWORD, ip));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
  });

  it('an over-limit login neither hashes nor verifies a password', async () => {
    const { email } = await registerUser(plain);
    const ip = uniqueIp();
    for (let i = 0; i < 3; i++) await loginFrom(small, email, GOOD_PASSWORD, ip);
    const verify = vi.spyOn(argon2, 'verify');
    const hash = vi.spyOn(argon2, 'hash');
    expectRateLimited(await loginFrom(small, email, GOOD_PASSWORD, ip));
    expectRateLimited(await loginFrom(small, email, 'wrong-password-1', ip));
    expectRateLimited(await loginFrom(small, uniqueEmail('nobody'), 'wrong-password-1', ip));
    expect(verify).toHaveBeenCalledTimes(0);
    expect(hash).toHaveBeenCalledTimes(0);
    // …and the refused attempts are neither successes nor failures of a sign-in.
    const types = (await eventsFromIp(small, ip)).map((e) => e.type);
    expect(types.filter((type) => type === 'login_success')).toHaveLength(3);
    expect(types.filter((type) => type === 'login_failure')).toHaveLength(0);
    // One audit event for the window, not one per refused attempt.
    expect(types.filter((type) => type === 'rate_limited')).toHaveLength(1);
  });

  it('records one rate_limited audit event per limit and window, however many attempts are refused', async () => {
    const { email } = await registerUser(t);
    const ip = uniqueIp();
    for (let i = 0; i < 3; i++) await loginFrom(small, email, GOOD_PASSWORD, ip);
    for (let i = 0; i < 20; i++) expectRateLimited(await loginFrom(small, email, GOOD_PASSWORD, ip));
    const refused = (await eventsFromIp(small, ip)).filter((e) => e.type === 'rate_limited');
    expect(refused).toHaveLength(1);
    expect(refused[0]!.detail).toMatchObject({ field: 'login', limits: ['LOGIN_IP'] });
  });

  it('retryAfter is honest: one second before it the login is still refused, after it the login works', async () => {
    const { email } = await registerUser(plain);
    const ip = uniqueIp();
    for (let i = 0; i < 3; i++) await loginFrom(small, email, GOOD_PASSWORD, ip);
    const retryAfter = expectRateLimited(await loginFrom(small, email, GOOD_PASSWORD, ip));
    if (retryAfter > 1) {
      small.clock.advance(retryAfter - 1);
      const again = expectRateLimited(await loginFrom(small, email, GOOD_PASSWORD, ip));
      expect(again).toBe(1);
      small.clock.advance(1);
    } else {
      small.clock.advance(retryAfter);
    }
    expect((await loginFrom(small, email, GOOD_PASSWORD, ip)).__typename).toBe('AuthPayload');
  });

  it('works again for a full window after the window passes (clock advanced 60 s)', async () => {
    const { email } = await registerUser(plain);
    const ip = uniqueIp();
    for (let i = 0; i < 3; i++) await loginFrom(small, email, GOOD_PASSWORD, ip);
    expectRateLimited(await loginFrom(small, email, GOOD_PASSWORD, ip));
    small.clock.advance(60);
    for (let i = 0; i < 3; i++) {
      expect((await loginFrom(small, email, GOOD_PASSWORD, ip)).__typename, `login ${i + 1} of the new window`).toBe('AuthPayload');
    }
    expectRateLimited(await loginFrom(small, email, GOOD_PASSWORD, ip));
  });

  it('does not push the window out while a client keeps retrying over the limit', async () => {
    const { email } = await registerUser(plain);
    const ip = uniqueIp();
    for (let i = 0; i < 3; i++) await loginFrom(small, email, GOOD_PASSWORD, ip);
    const first = expectRateLimited(await loginFrom(small, email, GOOD_PASSWORD, ip));
    for (let i = 0; i < 5; i++) expect(expectRateLimited(await loginFrom(small, email, GOOD_PASSWORD, ip))).toBe(first);
    small.clock.advance(first);
    expect((await loginFrom(small, email, GOOD_PASSWORD, ip)).__typename).toBe('AuthPayload');
  });
});

describe('rate limit on register (per IP)', () => {
  it('does not count a registration refused where its arguments are parsed: nothing ran', async () => {
    const ip = uniqueIp();
    for (let i = 1; i <= 12; i++) {
      expect(await register(t, `not-an-email-${i}`, ip), `register ${i}`).toMatchObject({ __typename: 'InputError', field: 'email' });
    }
    expect(await storedHits(t, 'REGISTER_IP', ip)).toBe(0);
    expect((await register(t, uniqueEmail('after-malformed'), ip)).__typename).toBe('AuthPayload');
  });

  it('answers the 11th registration from one IP within an hour with RateLimitedError (default 10/3600)', async () => {
    const ip = uniqueIp();
    // Ten registrations run (a malformed one is refused where its argument is parsed, before
    // anything runs or is counted), then the eleventh is refused.
    for (let i = 1; i <= 10; i++) {
      const member = await register(t, uniqueEmail(`counted-${i}`), ip);
      expect(member, `register ${i}`).toMatchObject({ __typename: 'AuthPayload' });
    }
    const email = uniqueEmail('limited');
    const hash = vi.spyOn(argon2, 'hash');
    const retryAfter = expectRateLimited(await register(t, email, ip));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    expect(hash).toHaveBeenCalledTimes(0);
    expect(await countUsers(t, email)).toBe(0);
    // Another address registers the same email at once.
    expect((await register(t, email, uniqueIp())).__typename).toBe('AuthPayload');
  });

  it('lets the address register again once the hour has passed', async () => {
    const limited = await createTestApp({ RATE_LIMITS: 'on', RATE_LIMIT_REGISTER_IP: '2/3600' }, database);
    const ip = uniqueIp();
    expect((await register(limited, uniqueEmail(), ip)).__typename).toBe('AuthPayload');
    expect((await register(limited, uniqueEmail(), ip)).__typename).toBe('AuthPayload');
    const retryAfter = expectRateLimited(await register(limited, uniqueEmail(), ip));
    expect(retryAfter).toBeLessThanOrEqual(3600);
    limited.clock.advance(retryAfter);
    expect((await register(limited, uniqueEmail(), ip)).__typename).toBe('AuthPayload');
  });
});

describe('rate limit on refresh (per IP)', () => {
  it('answers the 61st refresh from one IP within a minute with RateLimitedError (default 60/60), and does not spend the token', async () => {
    const session = await registerUser(plain);
    const ip = uniqueIp();
    for (let i = 1; i <= 60; i++) {
      expect((await refresh(t, `bogus.token-${i}`, ip)).__typename, `refresh ${i}`).toBe('InvalidRefreshTokenError');
    }
    const retryAfter = expectRateLimited(await refresh(t, session.refreshToken, ip));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect((await refresh(t, 'bogus.token-other', uniqueIp())).__typename).toBe('InvalidRefreshTokenError');
    // The refused refresh did not spend the token: once the window has passed, it still works.
    t.clock.advance(retryAfter);
    expect((await refresh(t, session.refreshToken, ip)).__typename).toBe('AuthPayload');
  });

  it('counts a refresh without a token too', async () => {
    const limited = await createTestApp({ RATE_LIMITS: 'on', RATE_LIMIT_REFRESH_IP: '2/60' }, database);
    const ip = uniqueIp();
    const res = await limited.gql(`mutation { refresh { __typename } }`, {}, { ip });
    expect(res.data?.refresh.__typename).toBe('InvalidRefreshTokenError');
    await limited.gql(`mutation { refresh { __typename } }`, {}, { ip });
    const third = await limited.gql(`mutation { refresh { __typename ... on RateLimitedError { code retryAfter } } }`, {}, { ip });
    expect(third.data?.refresh).toMatchObject({ __typename: 'RateLimitedError', code: 'RATE_LIMITED' });
  });
});

describe('the address a limit counts', () => {
  it('ignores X-Forwarded-For without TRUST_PROXY: a client rotating the header is still limited by its socket address', async () => {
    const { email } = await registerUser(plain);
    const ip = uniqueIp();
    const answers: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await small.gql(
        `mutation Login($input: LoginInput!) { login(input: $input) { __typename } }`,
        { input: { email, password: GOOD_PASSWORD } },
        { ip, headers: { 'x-forwarded-for': uniqueIp() } },
      );
      answers.push(res.data!.login.__typename);
    }
    expect(answers).toEqual(['AuthPayload', 'AuthPayload', 'AuthPayload', 'RateLimitedError']);
  });

  it('with TRUST_PROXY=true counts the last X-Forwarded-For entry (the one the proxy added), not the ones a client chose', async () => {
    const proxied = await createTestApp({ RATE_LIMITS: 'on', RATE_LIMIT_LOGIN_IP: '3/60', TRUST_PROXY: 'true' }, database);
    const { email } = await registerUser(plain);
    const proxy = uniqueIp();
    const client = uniqueIp();
    const login = (forwardedFor: string) =>
      proxied.gql(`mutation Login($input: LoginInput!) { login(input: $input) { __typename } }`, { input: { email, password: GOOD_PASSWORD } }, {
        ip: proxy,
        headers: { 'x-forwarded-for': forwardedFor },
      });
    const answers: string[] = [];
    for (let i = 0; i < 4; i++) answers.push((await login(`${uniqueIp()}, ${client}`)).data!.login.__typename);
    expect(answers).toEqual(['AuthPayload', 'AuthPayload', 'AuthPayload', 'RateLimitedError']);
    // Another client behind the same proxy is not limited.
    expect((await login(uniqueIp())).data!.login.__typename).toBe('AuthPayload');
    expect(await storedHits(proxied, 'LOGIN_IP', client)).toBe(4);
  });
});

describe('limits are per field', () => {
  it('an IP over the login limit can still register and refresh', async () => {
    const session = await registerUser(plain);
    const ip = uniqueIp();
    for (let i = 0; i < 3; i++) await loginFrom(small, session.email, 'wrong-password-1', ip);
    expectRateLimited(await loginFrom(small, session.email, GOOD_PASSWORD, ip));
    expect((await register(small, uniqueEmail(), ip)).__typename).toBe('AuthPayload');
    expect((await refresh(small, session.refreshToken, ip)).__typename).toBe('AuthPayload');
  });
});

describe('RATE_LIMITS=off', () => {
  it('lets 50 logins from one IP through, and wrong passwords never lock the account', async () => {
    const { email } = await registerUser(plain);
    const ip = uniqueIp();
    const answers: string[] = [];
    for (let i = 0; i < 40; i++) answers.push((await loginFrom(plain, email, GOOD_PASSWORD, ip)).__typename);
    for (let i = 0; i < 10; i++) answers.push((await loginFrom(plain, email, 'wrong-password-1', ip)).__typename);
    expect(answers.filter((a) => a === 'AuthPayload')).toHaveLength(40);
    expect(answers.filter((a) => a === 'InvalidCredentialsError')).toHaveLength(10);
    expect((await loginFrom(plain, email, GOOD_PASSWORD, ip)).__typename).toBe('AuthPayload');
    expect(await storedHits(plain, 'LOGIN_IP', ip)).toBe(0);
  });
});

describe('rate limit configuration', () => {

  it.each(['abc', '0/60', '10/0', '10', '10/60s', '-1/60', '1.5/60'])(
    'refuses RATE_LIMIT_LOGIN_IP=%s with a ConfigError naming the variable',
    (value) => {
      const error = configErrorOf({ RATE_LIMIT_LOGIN_IP: value });
      expect(error.message).toContain('RATE_LIMIT_LOGIN_IP');
    },
  );

  it('refuses to build an app with a bad limit (start-up fails)', async () => {
    await expect(createTestApp({ RATE_LIMITS: 'on', RATE_LIMIT_REGISTER_IP: 'abc' }, database)).rejects.toThrow(
      /RATE_LIMIT_REGISTER_IP/,
    );
    await expect(createTestApp({ RATE_LIMITS: 'on', RATE_LIMIT_REGISTER_IP: 'abc' }, database)).rejects.toBeInstanceOf(
      ConfigError,
    );
  });

  it('names every bad limit at once, and RATE_LIMITS must be on or off', () => {
    const error = configErrorOf({ RATE_LIMIT_LOGIN_IP: 'abc', RATE_LIMIT_REFRESH_IP: '0/60', RATE_LIMITS: 'maybe' });
    expect(error.message).toContain('RATE_LIMIT_LOGIN_IP');
    expect(error.message).toContain('RATE_LIMIT_REFRESH_IP');
    expect(error.message).toContain('RATE_LIMITS');
  });

  it('reads count/seconds and keeps the documented defaults', () => {
    const config = loadConfig({ RATE_LIMIT_LOGIN_IP: '3/30' });
    expect(config.rateLimits.enabled).toBe(true);
    expect(config.rateLimits.limits).toMatchObject({
      LOGIN_IP: { count: 3, seconds: 30 },
      LOGIN_ACCOUNT: { count: 5, seconds: 900 },
      REGISTER_IP: { count: 10, seconds: 3600 },
      REFRESH_IP: { count: 60, seconds: 60 },
      REQUEST_PASSWORD_RESET_IP: { count: 5, seconds: 3600 },
      REQUEST_PASSWORD_RESET_EMAIL: { count: 3, seconds: 3600 },
    });
    expect(loadConfig({ RATE_LIMITS: 'off' }).rateLimits.enabled).toBe(false);
    expect(loadConfig({}).rateLimits).toMatchObject({ lockoutBase: 60, lockoutMax: 900 });
  });
});

describe('purge of rate-limit counters', () => {
  it('deletes counters whose window has ended and keeps the current ones', async () => {
    const app = await createTestApp({ RATE_LIMITS: 'on' }, database);
    const { email } = await registerUser(plain);
    const [old, current] = [uniqueIp(), uniqueIp()];
    await loginFrom(app, email, GOOD_PASSWORD, old);
    app.clock.advance(61);
    await loginFrom(app, email, GOOD_PASSWORD, current);
    expect(await storedHits(app, 'LOGIN_IP', old)).toBe(1);
    const counts = await purgeExpired(app.services);
    expect(counts.rateLimits).toBeGreaterThanOrEqual(1);
    expect(await storedHits(app, 'LOGIN_IP', old)).toBe(0);
    expect(await storedHits(app, 'LOGIN_IP', current)).toBe(1);
  });
});

describe('argon2 work bound, through login', () => {
  it('answers RateLimitedError (retryAfter 1) instead of queueing when every argon2 slot is busy', async () => {
    const { email } = await registerUser(plain);
    const bounded = await createTestApp({ ARGON2_MAX_CONCURRENCY: '1', ARGON2_QUEUE_LIMIT: '0' }, database);
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => bounded.gql(`mutation Login($input: LoginInput!) {
        login(input: $input) { __typename ... on RateLimitedError { code retryAfter } }
      }`, { input: { email, password: GOOD_PASSWORD } }, { ip: uniqueIp() })),
    );
    const members = answers.map((a) => a.data?.login);
    const limited = members.filter((m) => m?.__typename === 'RateLimitedError');
    expect(members.filter((m) => m?.__typename === 'AuthPayload').length).toBeGreaterThanOrEqual(1);
    expect(limited.length).toBeGreaterThanOrEqual(1);
    for (const m of limited) expect(m).toEqual({ __typename: 'RateLimitedError', code: 'RATE_LIMITED', retryAfter: 1 });
    expect(members.filter((m) => !['AuthPayload', 'RateLimitedError'].includes(m?.__typename))).toEqual([]);
  });
});
