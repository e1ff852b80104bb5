/**
 * Configuration values other than the defaults change what the server does, seen through
 * GraphQL: issuer and audience, the refresh reuse grace, token lifetimes and the asymmetric
 * signing algorithms. Every app of this file shares one database (apps differ in configuration
 * only), so a token of one app can be presented to another.
 */
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, importSPKI, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { OWN_DATABASE_TIMEOUT } from '../support/database.js';
import { claimsOf, expectUnauthenticated, inspect, mint } from '../support/forge.js';
import { GOOD_PASSWORD, ME, REFRESH, REGISTER, loginUser, registerUser, uniqueEmail } from '../support/operations.js';

/** The default configuration; it owns the database every other app of this file borrows. */
let base: TestApp;
beforeAll(async () => {
  base = await createTestApp();
});
afterAll(async () => {
  await base?.close();
});

/** An app with these settings on the shared database. */
const appWith = (env: Record<string, string>) => createTestApp(env, base.database);

/** `me` on an app with an access token: asserts success and returns the user id. */
async function meId(app: TestApp, accessToken: string): Promise<string> {
  const res = await app.gql(ME, {}, { token: accessToken });
  expect(res.errors, JSON.stringify(res)).toBeUndefined();
  expect(res.data?.me, JSON.stringify(res)).not.toBeNull();
  return res.data!.me.id;
}

/** Asserts `me` refuses the access token with UNAUTHENTICATED. */
async function expectMeRefused(app: TestApp, accessToken: string): Promise<void> {
  expectUnauthenticated(await app.gql(ME, {}, { token: accessToken }), 'me');
}

/** Registers over GraphQL and returns the whole AuthPayload. */
async function registerPayload(app: TestApp) {
  const res = await app.gql(REGISTER, { input: { email: uniqueEmail('config'), password: GOOD_PASSWORD } });
  expect(res.errors, JSON.stringify(res)).toBeUndefined();
  const payload = res.data?.register;
  expect(payload?.__typename, JSON.stringify(res)).toBe('AuthPayload');
  return payload as {
    accessToken: string;
    refreshToken: string;
    expiresIn: number;
    refreshExpiresIn: number;
    user: { id: string; email: string };
  };
}

/** Runs `refresh` and returns its union member (a GraphQL error fails the test). */
async function refreshOn(app: TestApp, token: string) {
  const res = await app.gql(REFRESH, { token });
  expect(res.status).toBe(200);
  expect(res.errors, JSON.stringify(res)).toBeUndefined();
  return res.data!.refresh as Record<string, any>;
}

const REFUSED_REFRESH = { __typename: 'InvalidRefreshTokenError', code: 'INVALID_REFRESH_TOKEN', message: expect.any(String) };

describe('JWT_ISSUER and JWT_AUDIENCE', () => {
  const ISSUER = 'https://issuer.example';
  const AUDIENCE = 'my-api';
  let custom: TestApp;
  beforeAll(async () => {
    custom = await appWith({ JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE });
  });

  it('issues access tokens whose iss and aud are the configured values, and accepts them on me', async () => {
    const session = await registerUser(custom);
    const { claims } = inspect(session.accessToken);
    expect(claims.iss).toBe(ISSUER);
    expect(claims.aud).toBe(AUDIENCE);
    expect(await meId(custom, session.accessToken)).toBe(session.userId);
  });

  it('refuses a token of the default issuer and audience signed with the same secret', async () => {
    const session = await registerUser(base);
    // Genuine where it was issued: the refusal below is about iss/aud, not the token.
    expect(inspect(session.accessToken).claims).toMatchObject({ iss: 'authgraph', aud: 'authgraph' });
    expect(await meId(base, session.accessToken)).toBe(session.userId);
    await expectMeRefused(custom, session.accessToken);
  });

  it('refuses its own tokens on an app with the default issuer and audience', async () => {
    const session = await registerUser(custom);
    await expectMeRefused(base, session.accessToken);
  });

  it('refuses a token whose only wrong claim is iss', async () => {
    const session = await registerUser(custom);
    const claims = claimsOf(session.accessToken);
    // Re-signed unchanged, the forged token passes: the mint itself is sound.
    expect(await meId(custom, await mint({ claims }))).toBe(session.userId);
    await expectMeRefused(custom, await mint({ claims: { ...claims, iss: 'authgraph' } }));
  });

  it('refuses a token whose only wrong claim is aud', async () => {
    const session = await registerUser(custom);
    const claims = claimsOf(session.accessToken);
    await expectMeRefused(custom, await mint({ claims: { ...claims, aud: 'authgraph' } }));
  });
});

describe('REFRESH_REUSE_GRACE', () => {
  it('answers a retry of a spent refresh token 25 s later with the same successor when the grace is 30 s', async () => {
    const app = await appWith({ REFRESH_REUSE_GRACE: '30' });
    const session = await registerUser(app);
    const first = await refreshOn(app, session.refreshToken);
    expect(first.__typename).toBe('AuthPayload');
    app.clock.advance(25); // beyond the default grace of 10 s
    const retry = await refreshOn(app, session.refreshToken);
    expect(retry.__typename).toBe('AuthPayload');
    expect(retry.refreshToken).toBe(first.refreshToken);
    expect(await meId(app, retry.accessToken)).toBe(session.userId);
    // The successor is still live.
    expect((await refreshOn(app, first.refreshToken)).__typename).toBe('AuthPayload');
  });

  it('treats a retry 31 s later as a replay when the grace is 30 s', async () => {
    const app = await appWith({ REFRESH_REUSE_GRACE: '30' });
    const session = await registerUser(app);
    const first = await refreshOn(app, session.refreshToken);
    app.clock.advance(31);
    expect(await refreshOn(app, session.refreshToken)).toEqual(REFUSED_REFRESH);
    expect(await refreshOn(app, first.refreshToken)).toEqual(REFUSED_REFRESH);
  });

  it('treats a retry 1 s later as a replay when the grace is 0, and rejects the successor too', async () => {
    const app = await appWith({ REFRESH_REUSE_GRACE: '0' });
    const session = await registerUser(app);
    const first = await refreshOn(app, session.refreshToken);
    expect(first.__typename).toBe('AuthPayload');
    app.clock.advance(1);
    expect(await refreshOn(app, session.refreshToken)).toEqual(REFUSED_REFRESH);
    // The replay revoked the session: its successor and its access tokens are dead.
    expect(await refreshOn(app, first.refreshToken)).toEqual(REFUSED_REFRESH);
    await expectMeRefused(app, first.accessToken);
  });
});

describe('token lifetimes', () => {
  it('issues access tokens that live ACCESS_TOKEN_TTL=60 s: accepted after 59 s, refused after 61 s', async () => {
    const app = await appWith({ ACCESS_TOKEN_TTL: '60' });
    const payload = await registerPayload(app);
    const { claims } = inspect(payload.accessToken);
    expect(claims.exp! - claims.iat!).toBe(60);
    // exp is whole seconds and the clock is not: 59 or 60 seconds remain.
    expect(payload.expiresIn).toBeLessThanOrEqual(60);
    expect(payload.expiresIn).toBeGreaterThanOrEqual(59);
    expect(payload.expiresIn).toBe(Math.floor((claims.exp! * 1000 - app.clock.now().getTime()) / 1000));
    app.clock.advance(59);
    expect(await meId(app, payload.accessToken)).toBe(payload.user.id);
    app.clock.advance(2);
    await expectMeRefused(app, payload.accessToken);
  });

  it('issues refresh tokens that live REFRESH_TOKEN_TTL=120 s: accepted after 119 s, refused after 121 s', async () => {
    const app = await appWith({ REFRESH_TOKEN_TTL: '120' });
    const payload = await registerPayload(app);
    expect(payload.refreshExpiresIn).toBe(120);
    // A second session of the same age, to spend before the first one's expiry.
    const other = await loginUser(app, payload.user.email);
    app.clock.advance(119);
    const rotated = await refreshOn(app, other.refreshToken);
    expect(rotated.__typename).toBe('AuthPayload');
    expect(rotated.refreshExpiresIn).toBe(120);
    app.clock.advance(2);
    expect(await refreshOn(app, payload.refreshToken)).toEqual(REFUSED_REFRESH);
  });
});

describe('asymmetric JWT_ALGORITHM', () => {
  const privateKeyEncoding = { type: 'pkcs8', format: 'pem' } as const;
  const publicKeyEncoding = { type: 'spki', format: 'pem' } as const;
  const cases: { alg: string; keys: () => { privateKey: string; publicKey: string } }[] = [
    { alg: 'ES256', keys: () => generateKeyPairSync('ec', { namedCurve: 'P-256', privateKeyEncoding, publicKeyEncoding }) },
    { alg: 'EdDSA', keys: () => generateKeyPairSync('ed25519', { privateKeyEncoding, publicKeyEncoding }) },
    { alg: 'RS256', keys: () => generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding, publicKeyEncoding }) },
  ];

  for (const { alg, keys } of cases) {
    it(`signs access tokens with ${alg} and the configured private key, and accepts them on me`, async () => {
      const pair = keys();
      // A database of its own: on a set that already signs, a new JWT_PRIVATE_KEY is published
      // first and signs only after the pre-publication wait.
      const app = await createTestApp({ JWT_ALGORITHM: alg, JWT_PRIVATE_KEY: pair.privateKey });
      onTestFinished(() => app.close());
      const session = await registerUser(app);
      // Its kid is the RFC 7638 thumbprint of the configured key.
      const kid = await calculateJwkThumbprint(await exportJWK(createPublicKey(pair.publicKey)));
      expect(inspect(session.accessToken).header).toEqual({ alg, typ: 'at+jwt', kid });
      // Signed by the configured key: its public half verifies the token.
      const { payload } = await jwtVerify(session.accessToken, await importSPKI(pair.publicKey, alg), {
        algorithms: [alg],
        currentDate: app.clock.now(),
      });
      expect(payload.sub).toBe(session.userId);
      expect(await meId(app, session.accessToken)).toBe(session.userId);
    }, OWN_DATABASE_TIMEOUT);

    it(`refuses an HS256 token signed with the old shared secret when JWT_ALGORITHM=${alg}`, async () => {
      const app = await appWith({ JWT_ALGORITHM: alg, JWT_PRIVATE_KEY: keys().privateKey });
      const session = await registerUser(base);
      expect(await meId(base, session.accessToken)).toBe(session.userId);
      await expectMeRefused(app, session.accessToken);
    });
  }
});
