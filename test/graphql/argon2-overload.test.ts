/**
 * The argon2 work gate is per process, so this file has an app of its own with a gate of one
 * slot and no queue.
 */
import argon2 from 'argon2';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { LOGIN, registerUser, uniqueEmail } from '../support/operations.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({ ARGON2_MAX_CONCURRENCY: '1', ARGON2_QUEUE_LIMIT: '0' });
});
afterAll(() => t.close());

const login = (email: string) => t.gql(LOGIN, { input: { email, password: 'wrong-password-123' } });

it('answers an unknown email like a wrong password again once an overload that hit its first login has passed', async () => {
  const { email } = await registerUser(t);
  // A real account's login holds the only argon2 slot (its verification waits on `release`)
  // when the first unknown-email login of this process arrives: that login's dummy hash
  // cannot be made, and the login is refused.
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  const realVerify = argon2.verify.bind(argon2);
  const verify = vi.spyOn(argon2, 'verify').mockImplementationOnce(async (...args) => {
    await held;
    return realVerify(...args);
  });
  const holding = login(email);
  await vi.waitFor(() => expect(verify).toHaveBeenCalledTimes(1));
  expect((await login(uniqueEmail())).data?.login.__typename).toBe('RateLimitedError');
  release();
  expect((await holding).data?.login.__typename).toBe('InvalidCredentialsError');
  verify.mockRestore();

  // Idle again: an unknown email and a real one with a wrong password answer alike.
  for (let i = 0; i < 3; i++) {
    expect((await login(uniqueEmail())).data?.login.__typename).toBe('InvalidCredentialsError');
  }
  expect((await login(email)).data?.login.__typename).toBe('InvalidCredentialsError');
});
