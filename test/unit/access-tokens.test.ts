import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccessTokenCodec, MAX_ACCESS_TOKEN_LENGTH, type AccessTokenCodec } from '../../src/tokens/access-tokens.js';
import type { SigningKeys } from '../../src/tokens/signing-keys.js';
import { openKeys } from '../support/keys.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { TEST_JWT_SECRET, TEST_KEY_ENCRYPTION_KEY } from '../support/app.js';
import { claimsOf, inspect, mint, tamperClaims, unsignedToken } from '../support/forge.js';

const NOW = new Date('2030-01-01T12:00:00.250Z');
const NOW_SECOND = Math.floor(NOW.getTime() / 1000);
const at = (seconds: number) => new Date(NOW.getTime() + seconds * 1000);
const AUTH_TIME = new Date('2030-01-01T11:58:20.900Z');
const subject = { userId: randomUUID(), sessionId: randomUUID(), roles: ['user'], amr: ['pwd', 'otp'], authTime: AUTH_TIME };

let keys: SigningKeys;
let codec: AccessTokenCodec;
beforeAll(async () => {
  keys = await openKeys(loadConfig({ JWT_SECRET: TEST_JWT_SECRET }), createLogger('silent'));
  codec = createAccessTokenCodec(keys.ring, { issuer: 'authgraph', audience: 'authgraph', ttlSeconds: 900 });
});

describe('createAccessTokenCodec', () => {
  it('signs a token that it verifies, giving back the claims', async () => {
    const issued = await codec.sign(subject, NOW);
    const check = await codec.verify(issued.token, NOW);
    expect(check).toEqual({
      ok: true,
      claims: {
        sub: subject.userId,
        sid: subject.sessionId,
        jti: issued.jti,
        iat: NOW_SECOND,
        exp: NOW_SECOND + 900,
        roles: ['user'],
        amr: ['pwd', 'otp'],
        auth_time: Math.floor(AUTH_TIME.getTime() / 1000),
      },
    });
  });

  it('carries amr and auth_time (whole seconds) for downstream services', async () => {
    const { claims } = inspect((await codec.sign(subject, NOW)).token);
    expect(claims).toMatchObject({ amr: ['pwd', 'otp'], auth_time: NOW_SECOND - 100 });
  });

  it('stamps header typ at+jwt, alg HS256 and the kid of the signing key, iss and aud, and exp = iat + ttl', async () => {
    const issued = await codec.sign(subject, NOW);
    const { header, claims } = inspect(issued.token);
    expect(header).toEqual({ alg: 'HS256', typ: 'at+jwt', kid: keys.ring.signer(NOW)!.kid });
    expect(header.kid).toEqual(expect.any(String));
    expect(claims).toMatchObject({ iss: 'authgraph', aud: 'authgraph', iat: NOW_SECOND, exp: NOW_SECOND + 900 });
    expect(issued.expiresAt.getTime()).toBe((NOW_SECOND + 900) * 1000);
  });

  it('gives every token a fresh jti', async () => {
    const jtis = new Set<string>();
    for (let i = 0; i < 20; i++) jtis.add((await codec.sign(subject, NOW)).jti);
    expect(jtis.size).toBe(20);
  });

  it('honours a token until the second before exp and refuses it from exp on', async () => {
    const { token } = await codec.sign(subject, NOW);
    const lastSecond = new Date((NOW_SECOND + 899) * 1000 + 999);
    expect((await codec.verify(token, lastSecond)).ok).toBe(true);
    // Refused, but as a token of ours: its verified claims name the session it was issued in.
    const expired = { ok: false, reason: 'expired', claims: expect.objectContaining({ sub: subject.userId, sid: subject.sessionId }) };
    expect(await codec.verify(token, new Date((NOW_SECOND + 900) * 1000))).toEqual(expired);
    expect(await codec.verify(token, at(10_000))).toEqual(expired);
  });

  it('refuses a token signed with another key: unknown_key by its kid, bad_signature when it claims ours', async () => {
    const other = await openKeys(loadConfig({ JWT_SECRET: 'z'.repeat(40) }), createLogger('silent'));
    const { token } = await createAccessTokenCodec(other.ring, { issuer: 'authgraph', audience: 'authgraph', ttlSeconds: 900 }).sign(subject, NOW);
    expect(await codec.verify(token, NOW)).toEqual({ ok: false, reason: 'unknown_key' });
    const ours = inspect((await codec.sign(subject, NOW)).token).header.kid;
    const [, payload, signature] = token.split('.');
    const header = Buffer.from(JSON.stringify({ ...inspect(token).header, kid: ours })).toString('base64url');
    expect(await codec.verify(`${header}.${payload}.${signature}`, NOW)).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('refuses a token signed with our secret but naming another kid as unknown_key', async () => {
    const { token } = await codec.sign(subject, NOW);
    expect(await codec.verify(await mint({ claims: claimsOf(token), header: { kid: 'hs-0000000000000000' } }), NOW)).toEqual({
      ok: false,
      reason: 'unknown_key',
    });
  });

  it('refuses a tampered payload as bad_signature', async () => {
    const { token } = await codec.sign(subject, NOW);
    expect(await codec.verify(tamperClaims(token, { roles: ['admin'] }), NOW)).toEqual({ ok: false, reason: 'bad_signature' });
    // Also once expired: only a verified token's claims are kept.
    expect(await codec.verify(tamperClaims(token, { roles: ['admin'] }), at(10_000))).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('refuses alg none as malformed', async () => {
    const { token } = await codec.sign(subject, NOW);
    expect(await codec.verify(unsignedToken(claimsOf(token)), NOW)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('refuses HS512 with the same secret as malformed', async () => {
    const { token } = await codec.sign(subject, NOW);
    expect(await codec.verify(await mint({ claims: claimsOf(token), header: { alg: 'HS512' } }), NOW)).toEqual({
      ok: false,
      reason: 'malformed',
    });
  });

  it.each([
    ['another issuer', { iss: 'someone-else' }],
    ['another audience', { aud: 'someone-else' }],
    ['a sub that is not a uuid', { sub: 'admin' }],
    ['a sid that is not a uuid', { sid: 'x' }],
    ['no sid', { sid: undefined }],
    ['no jti', { jti: undefined }],
    ['no sub', { sub: undefined }],
    ['no iat', { iat: undefined }],
    ['an empty jti', { jti: '' }],
    ['roles that are not a list', { roles: 'admin' }],
    ['a fractional iat', { iat: NOW_SECOND + 0.5 }],
  ])('refuses a token with %s as bad_claims', async (_name, patch) => {
    const { token } = await codec.sign(subject, NOW);
    const forged = await mint({ claims: { ...claimsOf(token), ...patch } });
    expect(await codec.verify(forged, NOW)).toEqual({ ok: false, reason: 'bad_claims' });
  });

  it('refuses a token without exp as bad_claims', async () => {
    const { token } = await codec.sign(subject, NOW);
    const check = await codec.verify(await mint({ claims: { ...claimsOf(token), exp: undefined } }), NOW);
    expect(check).toEqual({ ok: false, reason: 'bad_claims' });
  });

  it.each([
    ['typ JWT', { typ: 'JWT' }],
    ['no typ', { typ: undefined }],
  ])('refuses a token with %s', async (_name, header) => {
    const { token } = await codec.sign(subject, NOW);
    const check = await codec.verify(await mint({ claims: claimsOf(token), header }), NOW);
    expect(check).toEqual({ ok: false, reason: 'bad_claims' });
  });

  it('defaults missing roles to an empty list', async () => {
    const { token } = await codec.sign(subject, NOW);
    const check = await codec.verify(await mint({ claims: { ...claimsOf(token), roles: undefined } }), NOW);
    expect(check.ok && check.claims.roles).toEqual([]);
  });

  it('refuses a token longer than the limit as oversized before parsing it', async () => {
    expect(MAX_ACCESS_TOKEN_LENGTH).toBe(4096);
    expect(await codec.verify('a'.repeat(MAX_ACCESS_TOKEN_LENGTH + 1), NOW)).toEqual({ ok: false, reason: 'oversized' });
  });

  it.each(['', 'garbage', 'a.b.c', 'a.b', '....'])('refuses %j as malformed', async (token) => {
    expect(await codec.verify(token, NOW)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('verifies a token signed before kids existed (jose, same secret, no kid in the header)', async () => {
    const token = await new SignJWT({ sid: subject.sessionId, roles: [] })
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
      .setIssuer('authgraph')
      .setAudience('authgraph')
      .setSubject(subject.userId)
      .setJti('j-1')
      .setIssuedAt(NOW_SECOND)
      .setExpirationTime(NOW_SECOND + 60)
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    expect(await codec.verify(token, NOW)).toEqual({
      ok: true,
      // Signed before sessions recorded how they were authenticated: no factor, no auth_time.
      claims: { sub: subject.userId, sid: subject.sessionId, jti: 'j-1', iat: NOW_SECOND, exp: NOW_SECOND + 60, roles: [], amr: [] },
    });
  });
});

describe('createAccessTokenCodec with the stored ES256 key set', () => {
  let stored: SigningKeys;
  let es: AccessTokenCodec;
  beforeAll(async () => {
    stored = await openKeys(loadConfig({ KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY }), createLogger('silent'));
    es = createAccessTokenCodec(stored.ring, { issuer: 'authgraph', audience: 'authgraph', ttlSeconds: 900 });
  });
  afterAll(() => stored.close());

  it('signs ES256 with the kid of the current key, and verifies it', async () => {
    const [current] = await stored.manager!.list();
    const { token } = await es.sign(subject, NOW);
    expect(inspect(token).header).toEqual({ alg: 'ES256', typ: 'at+jwt', kid: current!.kid });
    expect((await es.verify(token, NOW)).ok).toBe(true);
  });

  it('refuses a token without kid (only a symmetric key accepts those, from before kids existed)', async () => {
    const { token } = await es.sign(subject, NOW);
    const [, payload, signature] = token.split('.');
    const { kid: _kid, ...header } = inspect(token).header;
    const forged = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${payload}.${signature}`;
    expect(await es.verify(forged, NOW)).toEqual({ ok: false, reason: 'unknown_key' });
  });

  it('refuses HS256 signed with the published public key under its kid (algorithm confusion)', async () => {
    const { token } = await es.sign(subject, NOW);
    const { kid } = inspect(token).header;
    const [jwk] = (JSON.parse(stored.ring.published()!.body) as { keys: Record<string, unknown>[] }).keys;
    const forged = await mint({ claims: claimsOf(token), header: { kid }, secret: new TextEncoder().encode(JSON.stringify(jwk)) });
    // HS256 is not an algorithm of any key in the set: refused before any key is looked up.
    expect(await es.verify(forged, NOW)).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('the verified-token cache', () => {
  /** A codec over the test ring whose key lookups are counted, and whose key can be taken away. */
  function counted(options: { verifiedCacheSize?: number } = {}) {
    let held = true;
    let lookups = 0;
    const ring = {
      ...keys.ring,
      verifier: (header: { kid?: string; alg?: string }) => (lookups++, held ? keys.ring.verifier(header) : null),
      holds: (header: { kid?: string; alg?: string }) => held && keys.ring.holds(header),
    };
    const cached = createAccessTokenCodec(ring, { issuer: 'authgraph', audience: 'authgraph', ttlSeconds: 900, ...options });
    return { codec: cached, lookups: () => lookups, dropKey: () => (held = false) };
  }

  it('verifies a token with jose once, however many requests carry it, giving the same claims each time', async () => {
    const { codec: cached, lookups } = counted();
    const { token } = await cached.sign(subject, NOW);
    const first = await cached.verify(token, NOW);
    for (let i = 1; i <= 5; i++) expect(await cached.verify(token, at(i))).toEqual(first);
    expect(first.ok).toBe(true);
    expect(lookups()).toBe(1);
  });

  it('never answers a forged or altered token from the cache', async () => {
    const { codec: cached } = counted();
    const { token } = await cached.sign(subject, NOW);
    expect((await cached.verify(token, NOW)).ok).toBe(true);
    expect(await cached.verify(tamperClaims(token, { roles: ['admin'] }), NOW)).toEqual({ ok: false, reason: 'bad_signature' });
    const [h, p, sig] = token.split('.');
    const flipped = `${h}.${p}.${sig!.slice(0, -2)}${sig!.at(-2) === 'A' ? 'B' : 'A'}${sig!.at(-1)}`;
    expect((await cached.verify(flipped, NOW)).ok).toBe(false);
  });

  it('refuses a cached token from its exp on', async () => {
    const { codec: cached } = counted();
    const { token } = await cached.sign(subject, NOW);
    expect((await cached.verify(token, NOW)).ok).toBe(true);
    expect(await cached.verify(token, new Date((NOW_SECOND + 900) * 1000))).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('refuses a cached token once its key has left the set', async () => {
    const { codec: cached, dropKey } = counted();
    const { token } = await cached.sign(subject, NOW);
    expect((await cached.verify(token, NOW)).ok).toBe(true);
    dropKey();
    expect(await cached.verify(token, NOW)).toEqual({ ok: false, reason: 'unknown_key' });
  });

  it('stays bounded under a flood of distinct tokens: the oldest are forgotten and verified again', async () => {
    const { codec: cached, lookups } = counted({ verifiedCacheSize: 5 });
    const tokens = await Promise.all(Array.from({ length: 20 }, () => cached.sign(subject, NOW).then((i) => i.token)));
    for (const token of tokens) expect((await cached.verify(token, NOW)).ok).toBe(true);
    expect(lookups()).toBe(20);
    // The last five are remembered; the first was evicted and costs a verification again.
    for (const token of tokens.slice(-5)) await cached.verify(token, NOW);
    expect(lookups()).toBe(20);
    await cached.verify(tokens[0]!, NOW);
    expect(lookups()).toBe(21);
  });
});
