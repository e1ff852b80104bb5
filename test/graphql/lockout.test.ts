import argon2 from 'argon2';
import { eq } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { lockoutKey } from '../../src/abuse/lockout.js';
import type { DatabaseHandle } from '../../src/db/client.js';
import { loginLockouts } from '../../src/db/schema.js';
import { purgeExpired } from '../../src/purge.js';
import { eventsFromIp, expectRateLimited, loginFrom, uniqueIp } from '../support/abuse.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { openTestDatabase } from '../support/database.js';
import { GOOD_PASSWORD, LOGIN, registerUser, uniqueEmail } from '../support/operations.js';

const WRONG = 'not-the-password-9';

// `plain` (limits off) registers users; `t` has every default (at most 5 failures in any 900 s;
// locks of 60 s doubling to 900 s); `short` has LOCKOUT_BASE=10, LOCKOUT_MAX=25 and a cap of 1
// failure per 5 s, so each failure locks and the cap never outlasts the lock.
let database: DatabaseHandle;
let plain: TestApp;
let t: TestApp;
let short: TestApp;
beforeAll(async () => {
  database = await openTestDatabase();
  plain = await createTestApp({}, database);
  t = await createTestApp({ RATE_LIMITS: 'on' }, database);
  short = await createTestApp(
    { RATE_LIMITS: 'on', LOCKOUT_BASE: '10', LOCKOUT_MAX: '25', RATE_LIMIT_LOGIN_ACCOUNT: '1/5' },
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

/** The stored lockout entry of an email, if any. */
const storedLockout = async (email: string) =>
  (await database.db.select().from(loginLockouts).where(eq(loginLockouts.emailHash, lockoutKey(email))))[0];

/** The answer to the right password, from a fresh address. */
const rightPassword = (app: TestApp, email: string) => loginFrom(app, email, GOOD_PASSWORD, uniqueIp());

describe('account lockout: at most 5 failures per email in any 15 minutes', () => {
  it('refuses the 6th attempt after 5 wrong passwords from 5 IPs, even with the right password, without verifying it: retryAfter 900', async () => {
    const { email } = await registerUser(plain);
    expect(await failLogins(t, email, 5)).toEqual(Array(5).fill('InvalidCredentialsError'));
    const verify = vi.spyOn(argon2, 'verify');
    expect(expectRateLimited(await rightPassword(t, email))).toBe(900);
    expect(verify).not.toHaveBeenCalled();
    // A wrong password while blocked gets the same answer, also without a verification.
    expect(expectRateLimited(await loginFrom(t, email, WRONG, uniqueIp()))).toBe(900);
    expect(verify).not.toHaveBeenCalled();
  });

  it('does not block after 4 wrong passwords', async () => {
    const { email } = await registerUser(plain);
    await failLogins(t, email, 4);
    expect((await rightPassword(t, email)).__typename).toBe('AuthPayload');
  });

  it('retryAfter counts down while blocked, and the right password works the moment it reaches 0', async () => {
    const { email } = await registerUser(plain);
    await failLogins(t, email, 5);
    t.clock.advance(845);
    expect(expectRateLimited(await rightPassword(t, email))).toBe(55);
    t.clock.advance(54);
    expect(expectRateLimited(await rightPassword(t, email))).toBe(1);
    t.clock.advance(1);
    expect((await rightPassword(t, email)).__typename).toBe('AuthPayload');
  });

  it('slides: a failure leaves the count 900 s after it was made, not at a window boundary', async () => {
    const { email } = await registerUser(plain);
    await failLogins(t, email, 1); // t = 0
    t.clock.advance(600);
    await failLogins(t, email, 3); // t = 600
    t.clock.advance(301);
    // The failure at 0 has left the span; the three at 600 have not: one more may be tried
    // without blocking, and the one after it fills the cap (4 at 600..901 + 1).
    expect(await failLogins(t, email, 1)).toEqual(['InvalidCredentialsError']);
    expect(await failLogins(t, email, 1)).toEqual(['InvalidCredentialsError']);
    // Blocked until the first of the three failures at 600 leaves the span (at 1500): 599 s.
    expect(expectRateLimited(await rightPassword(t, email))).toBe(599);
  });

  it('counts failures within RATE_LIMIT_LOGIN_ACCOUNT seconds only: 4 failures, 900 s, 4 failures do not block', async () => {
    const { email } = await registerUser(plain);
    await failLogins(t, email, 4);
    t.clock.advance(900);
    await failLogins(t, email, 4);
    expect((await rightPassword(t, email)).__typename).toBe('AuthPayload');
  });

  // 1,440 requests, all but 15 of them refusals that check no password: seconds on an idle
  // machine, several times that on a loaded one. Hence its own limit, and a loop that stops
  // when the test is aborted (a timeout) instead of moving the clock under the next test.
  it('never checks more than 5 passwords for one email in any 15-minute span: an attacker trying every 5 s for 2 hours gets 15', async ({ signal }) => {
    const { email } = await registerUser(plain);
    const checkedAt: number[] = [];
    for (let second = 0; second < 7200; second += 5) {
      const [answer] = await failLogins(t, email, 1);
      signal.throwIfAborted();
      if (answer === 'InvalidCredentialsError') checkedAt.push(second);
      else expect(answer).toBe('RateLimitedError');
      t.clock.advance(5);
    }
    for (const end of checkedAt) {
      const inSpan = checkedAt.filter((s) => s > end - 900 && s <= end);
      expect(inSpan.length, `checks in the 900 s up to ${end}`).toBeLessThanOrEqual(5);
    }
    // 5 at once; then one after each lockout: 120, 240, 480 s, then every 900 s.
    expect(checkedAt).toEqual([0, 5, 10, 15, 20, 900, 1020, 1260, 1740, 2640, 3540, 4440, 5340, 6240, 7140]);
  }, 180_000);
});

describe('account lockout: escalation', () => {
  it('locks for LOCKOUT_BASE (60 s) when the 5th failure comes late in the span', async () => {
    const { email } = await registerUser(plain);
    await failLogins(t, email, 4);
    t.clock.advance(870);
    expect(await failLogins(t, email, 1)).toEqual(['InvalidCredentialsError']);
    // The cap alone would end at 900 (30 s); the 1-minute lockout lasts longer.
    expect(expectRateLimited(await rightPassword(t, email))).toBe(60);
    t.clock.advance(60);
    expect((await rightPassword(t, email)).__typename).toBe('AuthPayload');
  });

  it('once blocked, each further failure of the streak locks for twice as long: 120, 240, 480, then LOCKOUT_MAX (900)', async () => {
    const { email } = await registerUser(plain);
    await failLogins(t, email, 5);
    let wait = expectRateLimited(await rightPassword(t, email));
    const waits = [wait];
    for (let i = 0; i < 5; i++) {
      t.clock.advance(wait - 1);
      expect(expectRateLimited(await rightPassword(t, email))).toBe(1);
      t.clock.advance(1);
      // One guess, not another five.
      expect(await failLogins(t, email, 2)).toEqual(['InvalidCredentialsError', 'RateLimitedError']);
      wait = expectRateLimited(await rightPassword(t, email));
      waits.push(wait);
    }
    expect(waits).toEqual([900, 120, 240, 480, 900, 900]);
    // Never permanent: the right password works once the last lockout ends.
    t.clock.advance(900);
    expect((await rightPassword(t, email)).__typename).toBe('AuthPayload');
  });

  it('follows LOCKOUT_BASE and LOCKOUT_MAX (10, 20, 25, 25) and RATE_LIMIT_LOGIN_ACCOUNT (here 1 failure per 5 s)', async () => {
    const { email } = await registerUser(plain);
    for (const expected of [10, 20, 25, 25]) {
      expect(await failLogins(short, email, 1)).toEqual(['InvalidCredentialsError']);
      expect(expectRateLimited(await rightPassword(short, email))).toBe(expected);
      short.clock.advance(expected);
    }
    expect((await rightPassword(short, email)).__typename).toBe('AuthPayload');
  });

  it('a successful login ends the streak: failures and escalation start from nothing', async () => {
    const { email } = await registerUser(plain);
    await failLogins(t, email, 5);
    t.clock.advance(900);
    await failLogins(t, email, 1);
    expect(expectRateLimited(await rightPassword(t, email))).toBe(120);
    t.clock.advance(120);
    expect((await rightPassword(t, email)).__typename).toBe('AuthPayload');
    // 4 failures do not block; failures before the success never add up with those after it.
    expect(await failLogins(t, email, 4)).toEqual(Array(4).fill('InvalidCredentialsError'));
    expect((await rightPassword(t, email)).__typename).toBe('AuthPayload');
    await failLogins(t, email, 5);
    t.clock.advance(900);
    await failLogins(t, email, 1);
    expect(expectRateLimited(await rightPassword(t, email)), 'back to the first step').toBe(120);
  });

  it('forgets the streak after a quiet spell of RATE_LIMIT_LOGIN_ACCOUNT seconds + LOCKOUT_MAX without a failure (5 + 25 here), not before', async () => {
    const [forgotten, remembered] = [await registerUser(plain), await registerUser(plain)];
    for (const { email } of [forgotten, remembered]) {
      await failLogins(short, email, 1);
      short.clock.advance(10);
      await failLogins(short, email, 1); // locks for 20 s
    }
    short.clock.advance(29);
    expect(await failLogins(short, remembered.email, 1)).toEqual(['InvalidCredentialsError']);
    expect(expectRateLimited(await rightPassword(short, remembered.email))).toBe(25);
    short.clock.advance(1);
    expect(await failLogins(short, forgotten.email, 1)).toEqual(['InvalidCredentialsError']);
    expect(expectRateLimited(await rightPassword(short, forgotten.email))).toBe(10);
  });

  it('the purge deletes an email\'s entry only once its streak is over, and nothing it does changes an answer', async () => {
    const app = await createTestApp({ RATE_LIMITS: 'on' }, database);
    const { email } = await registerUser(plain);
    await failLogins(app, email, 5);
    app.clock.advance(900);
    await failLogins(app, email, 1); // locked 120 s, level 2
    app.clock.advance(120 + 1679); // lock over; 1799 s since the last failure
    await purgeExpired(app.services);
    expect(await storedLockout(email), 'kept: the streak is not over').toBeDefined();
    await failLogins(app, email, 1);
    expect(expectRateLimited(await rightPassword(app, email)), 'the streak survived the purge').toBe(240);
    app.clock.advance(240 + 1800);
    await purgeExpired(app.services);
    expect(await storedLockout(email), 'deleted after a quiet spell').toBeUndefined();
    await failLogins(app, email, 4);
    expect((await rightPassword(app, email)).__typename).toBe('AuthPayload');
  });
});

describe('account lockout: what it reveals and whom it touches', () => {
  it('blocks an unknown email exactly like a real one: the same answer, field by field', async () => {
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
      message: 'Too many attempts. Try again in 900 seconds.',
      retryAfter: 900,
    });
    expect(JSON.stringify(unknownAnswer)).toBe(JSON.stringify(realAnswer));
    expect(unknownAnswer.status).toBe(realAnswer.status);
  });

  it('shares one count between spellings of an email that normalize alike (case, whitespace, NFKC)', async () => {
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
    expect(expectRateLimited(await rightPassword(t, email))).toBe(900);
    expect(expectRateLimited(await loginFrom(t, email.toUpperCase(), GOOD_PASSWORD, uniqueIp()))).toBe(900);
  });

  it('blocks only that email: another account on the same address signs in', async () => {
    const [a, b] = [await registerUser(plain), await registerUser(plain)];
    await failLogins(t, a.email, 5);
    expectRateLimited(await rightPassword(t, a.email));
    const ip = uniqueIp();
    expect((await loginFrom(t, b.email, GOOD_PASSWORD, ip)).__typename).toBe('AuthPayload');
  });

  it('records a lockout audit event, with the wait it leaves, from the failure that caused it', async () => {
    const { email } = await registerUser(plain);
    const ips = [uniqueIp(), uniqueIp(), uniqueIp(), uniqueIp(), uniqueIp()];
    for (const ip of ips) await loginFrom(t, email, WRONG, ip);
    const lockouts = await eventsFromIp(t, ips[4]!, ['lockout']);
    expect(lockouts).toHaveLength(1);
    expect(lockouts[0]!.detail).toEqual({ seconds: 900 });
    for (const ip of ips.slice(0, 4)) expect(await eventsFromIp(t, ip, ['lockout'])).toHaveLength(0);
  });

  it('with RATE_LIMITS=off there is no lockout', async () => {
    const { email } = await registerUser(plain);
    await failLogins(plain, email, 12);
    expect((await loginFrom(plain, email, GOOD_PASSWORD, uniqueIp())).__typename).toBe('AuthPayload');
  });
});

describe('account lockout under concurrent attempts', () => {
  it('20 concurrent wrong passwords for one email get at most 5 password checks', async () => {
    const { email } = await registerUser(plain);
    const verify = vi.spyOn(argon2, 'verify');
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        t.gql(LOGIN, { input: { email, password: `${WRONG}-${i}` } }, { ip: uniqueIp() }),
      ),
    );
    const types = answers.map((a) => a.data?.login.__typename);
    // Every attempt is answered, and the email ends up blocked.
    expect(types.every((type) => type === 'InvalidCredentialsError' || type === 'RateLimitedError')).toBe(true);
    expectRateLimited(await rightPassword(t, email));
    // An attacker with many addresses must not get 20 guesses by sending them at once.
    expect(verify.mock.calls.length, `${verify.mock.calls.length} passwords were checked`).toBeLessThanOrEqual(5);
    expect(types.filter((type) => type === 'InvalidCredentialsError')).toHaveLength(verify.mock.calls.length);
  });

  it('once a lockout ends, 10 concurrent wrong passwords get exactly one password check, and the next lock is twice as long', async () => {
    const { email } = await registerUser(plain);
    await failLogins(t, email, 5);
    t.clock.advance(900);
    const verify = vi.spyOn(argon2, 'verify');
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        t.gql(LOGIN, { input: { email, password: `${WRONG}-${i}` } }, { ip: uniqueIp() }),
      ),
    );
    const types = answers.map((a) => a.data?.login.__typename);
    expect(types.filter((type) => type === 'InvalidCredentialsError')).toHaveLength(1);
    expect(types.filter((type) => type === 'RateLimitedError')).toHaveLength(9);
    expect(verify).toHaveBeenCalledTimes(1);
    expect(expectRateLimited(await rightPassword(t, email))).toBe(120);
  });
});
