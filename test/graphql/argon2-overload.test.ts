/**
 * Each app has its own argon2 work gate: this file's apps have a gate of one slot and no queue.
 */
import argon2 from 'argon2';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { expectRateLimited, loginFrom, uniqueIp } from '../support/abuse.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { GOOD_PASSWORD, LOGIN, registerUser, uniqueEmail } from '../support/operations.js';

const GATE = { ARGON2_MAX_CONCURRENCY: '1', ARGON2_QUEUE_LIMIT: '0' };
let t: TestApp;
let limited: TestApp; // the same gate and database, with the rate limits and lockout on
beforeAll(async () => {
  t = await createTestApp(GATE);
  limited = await createTestApp({ ...GATE, RATE_LIMITS: 'on' }, t.database);
});
afterAll(() => t.close());

// The gate is the app's: a slot still held after a failed test would refuse every later
// login. Whatever a test did, its held verification is let go and argon2 is real again.
let releaseHeld: (() => void) | undefined;
afterEach(() => {
  releaseHeld?.();
  releaseHeld = undefined;
  vi.restoreAllMocks();
});

const login = (email: string) => t.gql(LOGIN, { input: { email, password: 'wrong-password-123' } });

/** Holds the only argon2 slot with a login whose verification waits until the returned function is called. */
async function holdTheSlot(app: TestApp, email: string) {
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  releaseHeld = release;
  const realVerify = argon2.verify.bind(argon2);
  const verify = vi.spyOn(argon2, 'verify').mockImplementationOnce(async (...args) => {
    await held;
    return realVerify(...args);
  });
  const holding = app.gql(LOGIN, { input: { email, password: 'wrong-password-123' } }, { ip: uniqueIp() });
  // A login reaches argon2 after a few queries: milliseconds, or seconds on a loaded machine.
  await vi.waitFor(() => expect(verify).toHaveBeenCalledTimes(1), { timeout: 15_000 });
  return async () => {
    release();
    const answer = await holding;
    verify.mockRestore();
    return answer;
  };
}

it('answers an unknown email like a wrong password again once an overload that hit its first login has passed', async () => {
  const { email } = await registerUser(t);
  // A real account's login holds the only argon2 slot when the first unknown-email login of
  // this process arrives: that login's dummy hash cannot be made, and the login is refused.
  const release = await holdTheSlot(t, email);
  // Refused for the server's load: the message says the server is busy, not that the client tried too often.
  expectRateLimited((await login(uniqueEmail())).data?.login, 'busy');
  expect((await release()).data?.login.__typename).toBe('InvalidCredentialsError');

  // Idle again: an unknown email and a real one with a wrong password answer alike.
  for (let i = 0; i < 3; i++) {
    expect((await login(uniqueEmail())).data?.login.__typename).toBe('InvalidCredentialsError');
  }
  expect((await login(email)).data?.login.__typename).toBe('InvalidCredentialsError');
});

it('does not count logins refused for overload towards the lockout: their passwords were never checked', async () => {
  const [holder, target] = [await registerUser(t), await registerUser(t)];
  const release = await holdTheSlot(limited, holder.email);
  for (let i = 0; i < 8; i++) expectRateLimited(await loginFrom(limited, target.email, 'wrong-password-123', uniqueIp()), 'busy');
  await release();
  // Had the 8 refusals counted, the email would be blocked by now; 4 real failures do not block it.
  for (let i = 0; i < 4; i++) {
    expect((await loginFrom(limited, target.email, 'wrong-password-123', uniqueIp())).__typename).toBe('InvalidCredentialsError');
  }
  expect((await loginFrom(limited, target.email, GOOD_PASSWORD, uniqueIp())).__typename).toBe('AuthPayload');
});

it('keeps an escalating streak when the first attempt after a block is refused for overload: the next failure locks for 120 s', async () => {
  const [holder, target] = [await registerUser(t), await registerUser(t)];
  for (let i = 0; i < 5; i++) await loginFrom(limited, target.email, 'wrong-password-123', uniqueIp());
  limited.clock.advance(900);
  const release = await holdTheSlot(limited, holder.email);
  expectRateLimited(await loginFrom(limited, target.email, 'wrong-password-123', uniqueIp()), 'busy');
  await release();
  expect((await loginFrom(limited, target.email, 'wrong-password-123', uniqueIp())).__typename).toBe('InvalidCredentialsError');
  expect(expectRateLimited(await loginFrom(limited, target.email, GOOD_PASSWORD, uniqueIp()))).toBe(120);
});
