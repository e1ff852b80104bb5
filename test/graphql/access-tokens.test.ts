import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sessions } from '../../src/db/schema.js';
import { createTestApp, type TestApp } from '../support/app.js';
import {
  AUDIENCE,
  b64url,
  claimsOf,
  expectUnauthenticated,
  inspect,
  ISSUER,
  mint,
  REAL_SECRET,
  tamperClaims,
  unsignedToken,
} from '../support/forge.js';
import { GOOD_PASSWORD, LOGIN, loginUser, ME, REGISTER, registerUser, type Session, uniqueEmail, ME_ID, REFRESH_BRIEF } from '../support/operations.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(() => t.close());

const REFRESH = REFRESH_BRIEF;

/** Sends `me` with a bearer token and expects it refused. */
async function expectRefused(token: string) {
  expectUnauthenticated(await t.gql(ME_ID, {}, { token }), 'me');
}

/** An absurdly long Authorization header is refused at the HTTP layer, before any parsing (431). */
async function expectTooLarge(token: string) {
  const res = await t.gql(ME_ID, {}, { token });
  expect(res.status).toBe(431);
  expect(res.data).toBeUndefined();
  expect(res.errors).toEqual([
    { message: 'The Authorization header is too large.', extensions: { code: 'BAD_REQUEST' } },
  ]);
}

/** Sends `me` with a raw Authorization header and expects it refused. */
async function expectRefusedHeader(authorization: string) {
  expectUnauthenticated(await t.gql(ME_ID, {}, { headers: { authorization } }), 'me');
}

describe('forged and invalid access tokens sent to me', () => {
  // A fresh, currently valid session for every case (some cases move the clock past expiry).
  let victim: Session;
  beforeEach(async () => {
    victim = await registerUser(t);
    const control = await t.gql(ME_ID, {}, { token: victim.accessToken });
    expect(control.data?.me).toEqual({ id: victim.userId });
  });

  it('accepts the genuine claims re-signed with the real secret (control for the forgeries below)', async () => {
    const token = await mint({ claims: claimsOf(victim.accessToken) });
    const res = await t.gql(ME_ID, {}, { token });
    expect(res).toEqual({ status: 200, data: { me: { id: victim.userId } } });
  });

  it('refuses a request without any token', async () => {
    expectUnauthenticated(await t.gql(ME_ID), 'me');
  });

  it.each(['none', 'None', 'NONE', 'nOnE'])('rejects an unsigned token with alg %s', async (alg) => {
    await expectRefused(unsignedToken(claimsOf(victim.accessToken), { alg, typ: 'at+jwt' }));
  });

  it('rejects an alg none token that carries the original signature', async () => {
    const signature = victim.accessToken.split('.')[2]!;
    await expectRefused(`${unsignedToken(claimsOf(victim.accessToken))}${signature}`);
  });

  it('rejects a token signed with another HS256 key', async () => {
    const otherKey = new TextEncoder().encode('another-secret-another-secret-another-secret!');
    await expectRefused(await mint({ claims: claimsOf(victim.accessToken), secret: otherKey }));
  });

  it('rejects a token whose signature is cut off', async () => {
    const [header, payload] = victim.accessToken.split('.');
    await expectRefused(`${header}.${payload}.`);
  });

  it('rejects a token whose sub was changed after signing', async () => {
    const other = await registerUser(t);
    await expectRefused(tamperClaims(victim.accessToken, { sub: other.userId }));
  });

  it('rejects a token whose roles were changed after signing', async () => {
    await expectRefused(tamperClaims(victim.accessToken, { roles: ['admin'] }));
  });

  it('rejects a token whose exp was pushed back after signing', async () => {
    const { exp } = claimsOf(victim.accessToken) as { exp: number };
    await expectRefused(tamperClaims(victim.accessToken, { exp: exp + 86_400 }));
  });

  it('rejects a token from another issuer, even signed with the real secret', async () => {
    await expectRefused(await mint({ claims: { ...claimsOf(victim.accessToken), iss: 'https://evil.example' } }));
  });

  it('rejects a token for another audience, even signed with the real secret', async () => {
    await expectRefused(await mint({ claims: { ...claimsOf(victim.accessToken), aud: 'billing-service' } }));
  });

  it('rejects a token with typ JWT, even signed with the real secret', async () => {
    await expectRefused(await mint({ claims: claimsOf(victim.accessToken), header: { typ: 'JWT' } }));
  });

  it('rejects a token without a typ header, even signed with the real secret', async () => {
    await expectRefused(await mint({ claims: claimsOf(victim.accessToken), header: { typ: undefined } }));
  });

  it.each(['sid', 'jti', 'sub', 'exp', 'iat'])(
    'rejects a token without the %s claim, even signed with the real secret',
    async (claim) => {
      await expectRefused(await mint({ claims: { ...claimsOf(victim.accessToken), [claim]: undefined } }));
    },
  );

  it.each(['HS384', 'HS512'])('rejects a token signed with %s using the real secret', async (alg) => {
    const token = await mint({ claims: claimsOf(victim.accessToken), header: { alg } });
    expect(inspect(token).header.alg).toBe(alg);
    await expectRefused(token);
  });

  it('rejects an expired token', async () => {
    const session = await registerUser(t);
    const before = await t.gql(ME_ID, {}, { token: session.accessToken });
    expect(before.data?.me).toEqual({ id: session.userId });
    t.clock.advance(t.config.accessTokenTtl + 1);
    await expectRefused(session.accessToken);
  });

  it('rejects a token that expires at this very second', async () => {
    const session = await registerUser(t);
    t.clock.advance(t.config.accessTokenTtl);
    await expectRefused(session.accessToken);
  });

  it('rejects a refresh token sent as the access token', async () => {
    const session = await registerUser(t);
    await expectRefused(session.refreshToken);
  });

  it.each([
    ['a word', 'garbage'],
    ['three empty segments', '..'],
    ['three junk segments', 'a.b.c'],
    ['JSON in place of a JWT', '{"sub":"x"}'],
    ['non-JSON segments', `${b64url('not json')}.${b64url('not json')}.${b64url('x')}`],
    ['a JWT header with an array payload', `${b64url({ alg: 'HS256', typ: 'at+jwt' })}.${b64url([1, 2])}.x`],
  ])('rejects garbage: %s', async (_name, token) => {
    await expectRefused(token);
  });

  it.each([
    ['Basic', (token: string) => `Basic ${token}`],
    ['Token', (token: string) => `Token ${token}`],
    ['no scheme at all', (token: string) => token],
    ['Bearer without a space', (token: string) => `Bearer${token}`],
    ['two tokens', (token: string) => `Bearer ${token} ${token}`],
  ])('rejects a valid token sent with a non-Bearer scheme: %s', async (_name, header) => {
    await expectRefusedHeader(header(victim.accessToken));
  });

  it('rejects an empty bearer token', async () => {
    await expectRefusedHeader('Bearer ');
  });

  it('rejects an oversized token even when it is genuinely signed', async () => {
    const claims = claimsOf(victim.accessToken);
    const sized = (pad: number) => mint({ claims: { ...claims, pad: 'x'.repeat(pad) } });
    let pad = 2000;
    let token = await sized(pad);
    expect(token.length).toBeLessThan(4096);
    while (token.length <= 4096) token = await sized(++pad);
    const justUnder = await mint({ claims: { ...claims, pad: 'x'.repeat(pad - 1) } });
    expect(justUnder.length).toBeLessThanOrEqual(4096);
    expect(token.length).toBeGreaterThan(4096);
    // The same claims one character shorter are honoured: the size alone is refused.
    const accepted = await t.gql(ME_ID, {}, { token: justUnder });
    expect(accepted.data?.me).toEqual({ id: victim.userId });
    await expectRefused(token);
  });

  it('refuses a very large Authorization header (100 kB) before parsing it', async () => {
    await expectTooLarge('A'.repeat(100_000));
  });

  it('rejects a genuinely signed token whose sid is a session of another user', async () => {
    const other = await registerUser(t);
    const claims = { ...claimsOf(victim.accessToken), sid: claimsOf(other.accessToken).sid };
    await expectRefused(await mint({ claims }));
  });

  it('rejects a genuinely signed token whose session does not exist', async () => {
    await expectRefused(await mint({ claims: { ...claimsOf(victim.accessToken), sid: randomUUID() } }));
  });

  it('rejects a genuinely signed token whose user does not exist', async () => {
    await expectRefused(await mint({ claims: { ...claimsOf(victim.accessToken), sub: randomUUID() } }));
  });

  it.each([
    ['sub', 'admin'],
    ['sid', '1 or 1=1'],
    ['sub', 42],
    ['roles', 'admin'],
    ['exp', 'never'],
  ])('rejects a genuinely signed token whose %s claim is %j', async (claim, value) => {
    await expectRefused(await mint({ claims: { ...claimsOf(victim.accessToken), [claim]: value } }));
  });
});

describe('a bad access token does not break the mutations that need none', () => {
  const badHeaders = async (session: Session): Promise<string[]> => [
    `Bearer ${unsignedToken(claimsOf(session.accessToken))}`,
    `Bearer ${await mint({ claims: claimsOf(session.accessToken), secret: new TextEncoder().encode('x'.repeat(40)) })}`,
    `Bearer ${session.refreshToken}`,
    'Bearer garbage',
    // Longer than any token we issue, but under the size at which the whole request is refused.
    `Bearer ${'A'.repeat(5000)}`,
    'Basic dXNlcjpwYXNz',
  ];

  it('register answers AuthPayload whatever token comes along', async () => {
    const someone = await registerUser(t);
    for (const authorization of await badHeaders(someone)) {
      const email = uniqueEmail();
      const res = await t.gql(REGISTER, { input: { email, password: GOOD_PASSWORD } }, { headers: { authorization } });
      expect(res.status).toBe(200);
      expect(res.errors).toBeUndefined();
      expect(res.data?.register).toMatchObject({ __typename: 'AuthPayload', user: { email } });
    }
  });

  it('login answers AuthPayload whatever token comes along', async () => {
    const someone = await registerUser(t);
    for (const authorization of await badHeaders(someone)) {
      const res = await t.gql(LOGIN, { input: { email: someone.email, password: GOOD_PASSWORD } }, { headers: { authorization } });
      expect(res.status).toBe(200);
      expect(res.errors).toBeUndefined();
      expect(res.data?.login).toMatchObject({ __typename: 'AuthPayload', user: { id: someone.userId } });
    }
  });

  it('refresh answers AuthPayload whatever token comes along', async () => {
    const someone = await registerUser(t);
    let refreshToken = someone.refreshToken;
    for (const authorization of await badHeaders(someone)) {
      const res = await t.gql(REFRESH, { token: refreshToken }, { headers: { authorization } });
      expect(res.status).toBe(200);
      expect(res.errors).toBeUndefined();
      expect(res.data?.refresh).toMatchObject({ __typename: 'AuthPayload', user: { id: someone.userId } });
      refreshToken = res.data!.refresh.refreshToken;
    }
  });

  it('register, login and refresh also work with an expired access token of the same user', async () => {
    const someone = await registerUser(t);
    t.clock.advance(t.config.accessTokenTtl + 1);
    const login = await t.gql(LOGIN, { input: { email: someone.email, password: GOOD_PASSWORD } }, { token: someone.accessToken });
    expect(login.data?.login.__typename).toBe('AuthPayload');
    const refresh = await t.gql(REFRESH, { token: someone.refreshToken }, { token: someone.accessToken });
    expect(refresh.data?.refresh.__typename).toBe('AuthPayload');
    const register = await t.gql(REGISTER, { input: { email: uniqueEmail(), password: GOOD_PASSWORD } }, { token: someone.accessToken });
    expect(register.data?.register.__typename).toBe('AuthPayload');
  });
});

describe('access token claims', () => {
  it('has header typ at+jwt, alg HS256 and the kid of the secret, and nothing else', async () => {
    const session = await registerUser(t);
    expect(inspect(session.accessToken).header).toEqual({ alg: 'HS256', typ: 'at+jwt', kid: expect.stringMatching(/^hs-[\w-]{16}$/) });
  });

  it('carries iss, aud, sub, sid, jti, iat, exp, roles, amr and auth_time, with exp = iat + 900', async () => {
    const session = await registerUser(t);
    const nowSecond = Math.floor(t.clock.now().getTime() / 1000);
    const { claims } = inspect(session.accessToken);
    expect(Object.keys(claims).sort()).toEqual(['amr', 'aud', 'auth_time', 'exp', 'iat', 'iss', 'jti', 'roles', 'sid', 'sub']);
    expect(claims).toMatchObject({ iss: ISSUER, aud: AUDIENCE, sub: session.userId, roles: ['user'], amr: ['pwd'], auth_time: nowSecond });
    expect(claims.iat).toBe(nowSecond);
    expect(claims.exp).toBe(nowSecond + 900);
    expect(t.config.accessTokenTtl).toBe(900);
  });

  it('names the session it was issued in as sid', async () => {
    const session = await registerUser(t);
    const { claims } = inspect(session.accessToken);
    const rows = await t.database.db.select().from(sessions).where(eq(sessions.userId, session.userId));
    expect(rows.map((row) => row.id)).toEqual([claims.sid]);
  });

  it('reports expiresIn as the whole seconds left until exp', async () => {
    const email = uniqueEmail();
    const res = await t.gql(REGISTER, { input: { email, password: GOOD_PASSWORD } });
    const payload = res.data!.register;
    const { claims } = inspect(payload.accessToken);
    // exp is iat (the current second, truncated) + 900, so 899 or 900 seconds remain.
    expect(payload.expiresIn).toBe(Math.floor((claims.exp! * 1000 - t.clock.now().getTime()) / 1000));
    expect([899, 900]).toContain(payload.expiresIn);
  });

  it('gives every token a unique jti and every login its own sid', async () => {
    const session = await registerUser(t);
    const first = inspect((await loginUser(t, session.email)).accessToken).claims;
    const second = inspect((await loginUser(t, session.email)).accessToken).claims;
    const original = inspect(session.accessToken).claims;
    expect(first.iat).toBe(second.iat);
    expect(new Set([original.jti, first.jti, second.jti]).size).toBe(3);
    expect(new Set([original.sid, first.sid, second.sid]).size).toBe(3);
    expect(first.jti).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('keeps the sid and changes the jti when refreshed', async () => {
    const session = await registerUser(t);
    const res = await t.gql(REFRESH, { token: session.refreshToken });
    const refreshed = inspect(res.data!.refresh.accessToken).claims;
    const original = inspect(session.accessToken).claims;
    expect(refreshed.sid).toBe(original.sid);
    expect(refreshed.sub).toBe(original.sub);
    expect(refreshed.jti).not.toBe(original.jti);
  });

  it('is accepted by me right after it is issued', async () => {
    const session = await registerUser(t);
    const res = await t.gql(ME, {}, { token: session.accessToken });
    expect(res.errors).toBeUndefined();
    expect(res.data?.me).toMatchObject({ id: session.userId, email: session.email, roles: ['user'] });
  });

  it('is verified with the real secret (sanity check of the forging helper)', async () => {
    const session = await registerUser(t);
    const { kid } = inspect(session.accessToken).header;
    const reminted = await mint({ claims: claimsOf(session.accessToken), header: { kid }, secret: REAL_SECRET });
    expect(reminted).toBe(session.accessToken);
  });
});
