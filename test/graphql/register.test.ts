import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { GOOD_PASSWORD, ME, REGISTER, registerUser, uniqueEmail } from '../support/operations.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(() => t.close());

describe('register', () => {
  it('creates an account with role user and signs it in', async () => {
    const email = uniqueEmail();
    const res = await t.gql(REGISTER, { input: { email, password: GOOD_PASSWORD, name: 'Ada' } });
    const payload = res.data?.register;
    expect(payload.__typename).toBe('AuthPayload');
    expect(payload.tokenType).toBe('Bearer');
    expect(payload.user).toMatchObject({ email, name: 'Ada', roles: ['user'], emailVerified: false, active: true });
    const me = await t.gql(ME, {}, { token: payload.accessToken });
    expect(me.data?.me.id).toBe(payload.user.id);
  });

  it('normalizes the email by trimming, NFKC and lower-casing', async () => {
    const local = uniqueEmail().split('@')[0]!;
    // U+FF21 FULLWIDTH A becomes "a" under NFKC.
    const session = await registerUser(t, { email: `  \uFF21${local.toUpperCase()}@Example.COM ` });
    expect(session.email).toBe(`a${local}@example.com`);
  });
});
