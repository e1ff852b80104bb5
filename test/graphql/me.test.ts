import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../src/db/schema.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { claimsOf, expectUnauthenticated, mint } from '../support/forge.js';
import { GOOD_PASSWORD, LOGIN, ME, registerUser, uniqueEmail } from '../support/operations.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(() => t.close());

describe('me', () => {
  it('returns the signed-in user for a valid access token', async () => {
    const email = uniqueEmail();
    const session = await registerUser(t, { email, name: 'Grace' });
    const res = await t.gql(ME, {}, { token: session.accessToken });
    expect(res.status).toBe(200);
    expect(res.errors).toBeUndefined();
    expect(res.data?.me).toEqual({
      id: session.userId,
      email,
      name: 'Grace',
      roles: ['user'],
      emailVerified: false,
      active: true,
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
  });

  it('returns the user of the token, not another one', async () => {
    const first = await registerUser(t);
    const second = await registerUser(t);
    const a = await t.gql(`query { me { id email } }`, {}, { token: first.accessToken });
    const b = await t.gql(`query { me { id email } }`, {}, { token: second.accessToken });
    expect(a.data?.me).toEqual({ id: first.userId, email: first.email });
    expect(b.data?.me).toEqual({ id: second.userId, email: second.email });
  });

  it('answers UNAUTHENTICATED without a token', async () => {
    expectUnauthenticated(await t.gql(ME), 'me');
  });

  it('accepts the Bearer scheme in any letter case', async () => {
    const session = await registerUser(t);
    for (const scheme of ['bearer', 'BEARER', 'Bearer']) {
      const res = await t.gql(`query { me { id } }`, {}, { headers: { authorization: `${scheme} ${session.accessToken}` } });
      expect(res.data?.me).toEqual({ id: session.userId });
    }
  });

  it('works with the access token of a later login', async () => {
    const session = await registerUser(t);
    const res = await t.gql(LOGIN, { input: { email: session.email, password: GOOD_PASSWORD } });
    const me = await t.gql(`query { me { id } }`, {}, { token: res.data!.login.accessToken });
    expect(me.data?.me).toEqual({ id: session.userId });
  });

  it('reads roles from the database, not from the token', async () => {
    const session = await registerUser(t);
    // Even a token signed with the real secret cannot grant roles to its holder here.
    const token = await mint({ claims: { ...claimsOf(session.accessToken), roles: ['admin'] } });
    const res = await t.gql(`query { me { id roles } }`, {}, { token });
    expect(res.data?.me).toEqual({ id: session.userId, roles: ['user'] });
  });

  it('refuses the token of a user disabled after it was issued, on the next request', async () => {
    const session = await registerUser(t);
    const before = await t.gql(`query { me { id active } }`, {}, { token: session.accessToken });
    expect(before.data?.me).toEqual({ id: session.userId, active: true });
    await t.database.db.update(users).set({ active: false }).where(eq(users.id, session.userId));
    await t.services.changes.sync();
    expectUnauthenticated(await t.gql(ME, {}, { token: session.accessToken }), 'me');
  });

  it('honours the token again once the user is re-enabled', async () => {
    const session = await registerUser(t);
    await t.database.db.update(users).set({ active: false }).where(eq(users.id, session.userId));
    await t.services.changes.sync();
    expectUnauthenticated(await t.gql(ME, {}, { token: session.accessToken }), 'me');
    await t.database.db.update(users).set({ active: true }).where(eq(users.id, session.userId));
    await t.services.changes.sync();
    const res = await t.gql(`query { me { id } }`, {}, { token: session.accessToken });
    expect(res.data?.me).toEqual({ id: session.userId });
  });

  it('refuses the token of a user whose row was deleted', async () => {
    const session = await registerUser(t);
    await t.database.db.delete(users).where(eq(users.id, session.userId));
    await t.services.changes.sync();
    expectUnauthenticated(await t.gql(ME, {}, { token: session.accessToken }), 'me');
  });

  it('refuses an expired token even though the user and session are fine', async () => {
    const session = await registerUser(t);
    t.clock.advance(t.config.accessTokenTtl - 1);
    const stillValid = await t.gql(`query { me { id } }`, {}, { token: session.accessToken });
    expect(stillValid.data?.me).toEqual({ id: session.userId });
    t.clock.advance(2);
    expectUnauthenticated(await t.gql(ME, {}, { token: session.accessToken }), 'me');
  });
});

describe('me under aliases', () => {
  it('answers every alias of me in one request with a valid token', async () => {
    const session = await registerUser(t);
    const res = await t.gql(`query { a: me { id } b: me { email } c: me { id roles } }`, {}, { token: session.accessToken });
    expect(res.status).toBe(200);
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({
      a: { id: session.userId },
      b: { email: session.email },
      c: { id: session.userId, roles: ['user'] },
    });
  });

  it('refuses every alias of me, one UNAUTHENTICATED error each, with a bad token', async () => {
    const res = await t.gql(`query { a: me { id } b: me { email } }`, {}, { token: 'garbage' });
    expect(res.status).toBe(200);
    expect(res.data).toEqual({ a: null, b: null });
    expect(res.errors).toHaveLength(2);
    const errors = res.errors!.map((error) => [error.path, error.extensions?.code]);
    expect(errors.sort((x, y) => String(x[0]).localeCompare(String(y[0])))).toEqual([
      [['a'], 'UNAUTHENTICATED'],
      [['b'], 'UNAUTHENTICATED'],
    ]);
  });

  it('refuses every alias of me without a token', async () => {
    const res = await t.gql(`query { a: me { id } b: me { id } }`);
    expect(res.status).toBe(200);
    expect(res.data).toEqual({ a: null, b: null });
    expect(res.errors!.map((error) => error.extensions?.code)).toEqual(['UNAUTHENTICATED', 'UNAUTHENTICATED']);
  });
});
