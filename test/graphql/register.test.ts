import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { GOOD_PASSWORD, LOGIN, ME, REGISTER, registerUser, uniqueEmail } from '../support/operations.js';
import { countUsers, sessionsOf } from '../support/rows.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(() => t.close());

/** A strong password of exactly `length` characters (16 random-looking characters repeated). */
const strongPassword = (length: number) => 'kT9#mQ2$xV7!pL4&'.repeat(Math.ceil(length / 16)).slice(0, length);

async function register(input: Record<string, unknown>, options?: Parameters<TestApp['gql']>[2]) {
  const res = await t.gql(REGISTER, { input }, options);
  expect(res.errors).toBeUndefined();
  return res.data?.register;
}

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

  it('rejects an invalid email with InputError on field email, code INVALID_INPUT', async () => {
    for (const email of ['not-an-email', 'a@', '@example.com', 'two@@example.com', '']) {
      const before = await countUsers(t);
      const payload = await register({ email, password: GOOD_PASSWORD });
      expect(payload, email).toMatchObject({ __typename: 'InputError', code: 'INVALID_INPUT', field: 'email' });
      expect(payload.message).toEqual(expect.any(String));
      expect(await countUsers(t)).toBe(before);
    }
  });

  it('rejects a password of 7 characters as WEAK_PASSWORD on field password', async () => {
    const email = uniqueEmail();
    const payload = await register({ email, password: strongPassword(7) });
    expect(payload).toMatchObject({ __typename: 'InputError', code: 'WEAK_PASSWORD', field: 'password' });
    expect(await countUsers(t, email)).toBe(0);
  });

  it('rejects a password of 257 characters as WEAK_PASSWORD on field password', async () => {
    const email = uniqueEmail();
    const payload = await register({ email, password: strongPassword(257) });
    expect(payload).toMatchObject({ __typename: 'InputError', code: 'WEAK_PASSWORD', field: 'password' });
    expect(await countUsers(t, email)).toBe(0);
  });

  it('rejects common passwords as WEAK_PASSWORD on field password', async () => {
    for (const password of ['password123', 'qwertyuiop', 'iloveyou1', 'Password1']) {
      const email = uniqueEmail();
      const payload = await register({ email, password });
      expect(payload, password).toMatchObject({ __typename: 'InputError', code: 'WEAK_PASSWORD', field: 'password' });
      expect(await countUsers(t, email)).toBe(0);
    }
  });

  it('accepts a strong password of exactly 8 characters', async () => {
    const password = strongPassword(8);
    expect([...password]).toHaveLength(8);
    const payload = await register({ email: uniqueEmail(), password });
    expect(payload.__typename).toBe('AuthPayload');
  });

  it('accepts a strong password of exactly 256 characters', async () => {
    const password = strongPassword(256);
    expect([...password]).toHaveLength(256);
    const email = uniqueEmail();
    const payload = await register({ email, password });
    expect(payload.__typename).toBe('AuthPayload');
    // ...and it is the whole password that was stored, not a prefix of it.
    const wrongTail = `${password.slice(0, 255)}x`;
    const denied = await t.gql(LOGIN, { input: { email, password: wrongTail } });
    expect(denied.data?.login.__typename).toBe('InvalidCredentialsError');
    const allowed = await t.gql(LOGIN, { input: { email, password } });
    expect(allowed.data?.login.__typename).toBe('AuthPayload');
  });

  it('answers EmailTakenError for a second account with the same email', async () => {
    const email = uniqueEmail();
    await registerUser(t, { email });
    const payload = await register({ email, password: GOOD_PASSWORD });
    expect(payload).toMatchObject({ __typename: 'EmailTakenError', code: 'EMAIL_TAKEN' });
    expect(await countUsers(t, email)).toBe(1);
  });

  it('answers EmailTakenError for an email that normalizes to an existing one (case, whitespace)', async () => {
    const email = uniqueEmail();
    await registerUser(t, { email });
    for (const variant of [email.toUpperCase(), `  ${email}\t`, ` ${email.replace('example.com', 'EXAMPLE.com')} `]) {
      const payload = await register({ email: variant, password: GOOD_PASSWORD });
      expect(payload, variant).toMatchObject({ __typename: 'EmailTakenError', code: 'EMAIL_TAKEN' });
    }
    expect(await countUsers(t, email)).toBe(1);
  });

  it('refuses an extra input field written in the query as a validation error, creating no user', async () => {
    const email = uniqueEmail();
    const before = await countUsers(t);
    const res = await t.gql(
      `mutation { register(input: { email: "${email}", password: "${GOOD_PASSWORD}", roles: ["admin"] }) { __typename } }`,
    );
    expect(res.data ?? null).toBeNull();
    expect(res.errors).toHaveLength(1);
    expect(res.errors![0]!.message).toMatch(/"roles" is not defined by type "RegisterInput"/);
    expect(await countUsers(t)).toBe(before);
    expect(await countUsers(t, email)).toBe(0);
  });

  it('refuses an extra input field sent in variables as a validation error, creating no user', async () => {
    const email = uniqueEmail();
    const before = await countUsers(t);
    const res = await t.gql(REGISTER, { input: { email, password: GOOD_PASSWORD, roles: ['admin'] } });
    expect(res.data ?? null).toBeNull();
    expect(res.errors).toHaveLength(1);
    expect(res.errors![0]!.message).toMatch(/"roles" is not defined by type "RegisterInput"/);
    expect(await countUsers(t)).toBe(before);
    expect(await countUsers(t, email)).toBe(0);
  });

  it('gives a new user exactly the role user', async () => {
    const session = await registerUser(t);
    const me = await t.gql(ME, {}, { token: session.accessToken });
    expect(me.errors).toBeUndefined();
    expect(me.data?.me.roles).toEqual(['user']);
  });

  it('rejects a name over 100 characters with InputError on field name', async () => {
    const email = uniqueEmail();
    const payload = await register({ email, password: GOOD_PASSWORD, name: 'n'.repeat(101) });
    expect(payload).toMatchObject({ __typename: 'InputError', code: 'INVALID_INPUT', field: 'name' });
    expect(await countUsers(t, email)).toBe(0);
  });

  it('stores the name trimmed, and a blank name as none', async () => {
    const named = await register({ email: uniqueEmail(), password: GOOD_PASSWORD, name: '  Grace Hopper  ' });
    expect(named.user.name).toBe('Grace Hopper');
    const blank = await register({ email: uniqueEmail(), password: GOOD_PASSWORD, name: '   ' });
    expect(blank.user.name).toBeNull();
  });

  it('rejects a password that is the email address itself as WEAK_PASSWORD', async () => {
    const email = `marguerite.quintessa.${uniqueEmail().split('@')[0]}@example.com`;
    const payload = await register({ email, password: email });
    expect(payload).toMatchObject({ __typename: 'InputError', code: 'WEAK_PASSWORD', field: 'password' });
  });

  it('still registers when a bad access token is sent along', async () => {
    const payload = await register({ email: uniqueEmail(), password: GOOD_PASSWORD }, { token: 'not-a-jwt' });
    expect(payload.__typename).toBe('AuthPayload');
  });

  it('opens a session recording the client IP and user agent', async () => {
    const payload = await register(
      { email: uniqueEmail(), password: GOOD_PASSWORD },
      { ip: '203.0.113.7', headers: { 'user-agent': 'TestAgent/1.0' } },
    );
    expect(payload.__typename).toBe('AuthPayload');
    const rows = await sessionsOf(t, payload.user.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ ip: '203.0.113.7', userAgent: 'TestAgent/1.0', revokedAt: null });
    expect(rows[0]!.createdAt.getTime()).toBe(t.clock.now().getTime());
  });
});
