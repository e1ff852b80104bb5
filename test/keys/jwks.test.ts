import { randomBytes } from 'node:crypto';
import { createLocalJWKSet, importPKCS8, importJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { signingKeys } from '../../src/db/schema.js';
import { createKeyEncryption } from '../../src/tokens/key-encryption.js';
import { createTestApp, TEST_KEY_ENCRYPTION_KEY, type TestApp } from '../support/app.js';
import { OWN_DATABASE_TIMEOUT } from '../support/database.js';
import { AUDIENCE, ISSUER } from '../support/forge.js';
import { registerUser } from '../support/operations.js';

/** Every JWK member that would let its holder sign: RSA private parts, EC/OKP `d`, a symmetric `k`. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
/** What a sealed private key looks like at rest: `v1.<iv>.<ciphertext>.<tag>`, base64url parts. */
const SEALED = /^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/;
const JWKS_URL = 'http://authgraph.test/.well-known/jwks.json';
/** A JWKS_MAX_AGE no default has, so the header is seen to follow the setting. */
const MAX_AGE = 7;
const ES256 = { JWT_SECRET: '', JWKS_MAX_AGE: String(MAX_AGE), ACCESS_TOKEN_TTL: '60' };

const apps: TestApp[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});
/** A test app on a database of its own, closed after the test (rotations are not undone). */
async function open(env: Record<string, string>): Promise<TestApp> {
  const t = await createTestApp(env);
  apps.push(t);
  return t;
}

function getJwks(t: TestApp, init: RequestInit = {}) {
  return t.app.fetch(JWKS_URL, init, { req: { socket: { remoteAddress: '127.0.0.1' } } });
}

/** The published set, with its ETag; fails unless it is served with 200. */
async function published(t: TestApp): Promise<{ keys: JWK[]; etag: string }> {
  const res = await getJwks(t);
  expect(res.status).toBe(200);
  const body = (await res.json()) as { keys: JWK[] };
  return { keys: body.keys, etag: res.headers.get('etag')! };
}

const kidsOf = (keys: JWK[]) => keys.map((key) => key.kid).sort();

async function statesByKid(t: TestApp): Promise<Record<string, string>> {
  const list = await t.services.signingKeys.manager!.list();
  return Object.fromEntries(list.map((key) => [key.kid, key.state]));
}

function expectNoPrivateMember(jwk: Record<string, unknown>): void {
  expect(PRIVATE_MEMBERS.filter((member) => member in jwk), JSON.stringify(jwk)).toEqual([]);
}

describe('GET /.well-known/jwks.json (ES256, the default)', () => {
  it(
    'serves the public signing key with kid, alg and use, cacheable for JWKS_MAX_AGE, with a strong ETag',
    async () => {
      const t = await open(ES256);
      const res = await getJwks(t);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/jwk-set+json');
      expect(res.headers.get('cache-control')).toBe(`public, max-age=${MAX_AGE}`);
      const etag = res.headers.get('etag');
      // A strong validator: quoted, no W/ prefix.
      expect(etag).toMatch(/^"[^"]+"$/);
      const { keys } = (await res.json()) as { keys: JWK[] };
      const [current] = await t.services.signingKeys.manager!.list();
      expect(keys).toHaveLength(1);
      expect(keys[0]).toEqual({ kty: 'EC', crv: 'P-256', x: expect.any(String), y: expect.any(String), kid: current!.kid, alg: 'ES256', use: 'sig' });
    },
    OWN_DATABASE_TIMEOUT,
  );

  it(
    'answers 304 without a body to a matching If-None-Match, alone, in a list of tags or weak, and 200 to a stale one',
    async () => {
      const t = await open(ES256);
      const { etag } = await published(t);
      for (const ifNoneMatch of [etag, `"some-other-tag", ${etag}`, `W/${etag}`]) {
        const res = await getJwks(t, { headers: { 'if-none-match': ifNoneMatch } });
        expect(res.status, ifNoneMatch).toBe(304);
        expect(await res.text()).toBe('');
        expect(res.headers.get('etag')).toBe(etag);
        expect(res.headers.get('cache-control')).toBe(`public, max-age=${MAX_AGE}`);
      }
      const stale = await getJwks(t, { headers: { 'if-none-match': '"some-other-tag", "another"' } });
      expect(stale.status).toBe(200);
      expect(((await stale.json()) as { keys: JWK[] }).keys).toHaveLength(1);
    },
    OWN_DATABASE_TIMEOUT,
  );

  it(
    'publishes the next key as soon as a rotation is scheduled, the retired one after promotion, and changes the ETag with the set',
    async () => {
      const t = await open(ES256);
      const manager = t.services.signingKeys.manager!;
      const before = await published(t);
      const [oldKid] = kidsOf(before.keys);

      const newKid = await manager.rotate();
      const during = await published(t);
      expect(kidsOf(during.keys)).toEqual([oldKid, newKid].sort());
      expect(await statesByKid(t)).toEqual({ [oldKid!]: 'current', [newKid]: 'next' });
      expect(during.etag).not.toBe(before.etag);
      // A client holding the old tag gets the new set, not a 304.
      expect((await getJwks(t, { headers: { 'if-none-match': before.etag } })).status).toBe(200);

      // Promoted after 2 × JWKS_MAX_AGE: the old key stays published, now retired.
      t.clock.advance(2 * MAX_AGE);
      await manager.step();
      const after = await published(t);
      expect(await statesByKid(t)).toEqual({ [oldKid!]: 'retired', [newKid]: 'current' });
      expect(kidsOf(after.keys)).toEqual([oldKid, newKid].sort());

      // Removed after ACCESS_TOKEN_TTL + JWKS_MAX_AGE: the set and its tag change again.
      t.clock.advance(60 + MAX_AGE);
      await manager.step();
      const removed = await published(t);
      expect(kidsOf(removed.keys)).toEqual([newKid]);
      expect(removed.etag).not.toBe(after.etag);
      expect(removed.etag).not.toBe(before.etag);
      expect((await getJwks(t, { headers: { 'if-none-match': after.etag } })).status).toBe(200);
    },
    OWN_DATABASE_TIMEOUT,
  );

  it(
    'drops a revoked key from the set at once, and publishes its replacement',
    async () => {
      const t = await open(ES256);
      const manager = t.services.signingKeys.manager!;
      const before = await published(t);
      const [revoked] = kidsOf(before.keys);

      expect(await manager.retire(revoked!)).toBe(true);
      // No clock movement, no step: the very next request.
      const after = await published(t);
      expect(kidsOf(after.keys)).not.toContain(revoked);
      expect(after.keys).toHaveLength(1);
      expect(await statesByKid(t)).toEqual({ [revoked!]: 'revoked', [after.keys[0]!.kid!]: 'current' });
      expect(after.etag).not.toBe(before.etag);
      expect((await getJwks(t, { headers: { 'if-none-match': before.etag } })).status).toBe(200);
    },
    OWN_DATABASE_TIMEOUT,
  );

  it(
    'answers 405 to a method other than GET or HEAD',
    async () => {
      const t = await open(ES256);
      const res = await getJwks(t, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('GET, HEAD');
    },
    OWN_DATABASE_TIMEOUT,
  );
});

describe('GET /.well-known/jwks.json under HS256', () => {
  it(
    'is not found: a symmetric key is never published',
    async () => {
      const t = await open({});
      expect(t.services.signingKeys.algorithm).toBe('HS256');
      const res = await getJwks(t);
      expect(res.status).toBe(404);
      const body = await res.text();
      expect(body).not.toMatch(/"keys"|"k"/);
    },
    OWN_DATABASE_TIMEOUT,
  );
});

const ALGORITHMS = [
  { alg: 'RS256', shape: { kty: 'RSA', n: expect.any(String), e: 'AQAB' } },
  { alg: 'ES256', shape: { kty: 'EC', crv: 'P-256', x: expect.any(String), y: expect.any(String) } },
  { alg: 'EdDSA', shape: { kty: 'OKP', crv: 'Ed25519', x: expect.any(String) } },
] as const;

describe.each(ALGORITHMS)('the $alg key set', ({ alg, shape }) => {
  it(
    'publishes only public members, for every state, and the published keys verify the tokens the app signs',
    async () => {
      const t = await open({ JWT_SECRET: '', JWT_ALGORITHM: alg, JWKS_MAX_AGE: String(MAX_AGE) });
      const manager = t.services.signingKeys.manager!;
      // retired, current and next at once.
      await manager.rotate({ immediately: true });
      await manager.rotate();
      expect(Object.values(await statesByKid(t)).sort()).toEqual(['current', 'next', 'retired']);

      const { keys } = await published(t);
      expect(keys).toHaveLength(3);
      for (const key of keys) {
        expectNoPrivateMember(key);
        expect(key).toEqual({ ...shape, kid: expect.any(String), alg, use: 'sig' });
      }
      const session = await registerUser(t);
      const { protectedHeader } = await jwtVerify(session.accessToken, createLocalJWKSet({ keys }), {
        issuer: ISSUER,
        audience: AUDIENCE,
        currentDate: t.clock.now(),
      });
      expect(protectedHeader).toMatchObject({ alg, kid: expect.any(String) });
    },
    OWN_DATABASE_TIMEOUT,
  );

  it(
    'stores no private key in clear: each is sealed under KEY_ENCRYPTION_KEY, bound to its kid, and erased on revocation',
    async () => {
      const t = await open({ JWT_SECRET: '', JWT_ALGORITHM: alg, JWKS_MAX_AGE: String(MAX_AGE) });
      const manager = t.services.signingKeys.manager!;
      const first = (await manager.list())[0]!.kid;
      await manager.rotate({ immediately: true }); // first: retired
      await manager.rotate(); // a next key
      await manager.rotate({ immediately: true }); // the earlier current and the waiting next: retired
      await manager.rotate(); // next
      expect(await manager.retire(first)).toBe(true); // revoked

      const rows = await t.database.db.select().from(signingKeys);
      expect(rows.map((row) => row.state).sort()).toEqual(['current', 'next', 'retired', 'retired', 'revoked']);
      const right = createKeyEncryption(Buffer.from(TEST_KEY_ENCRYPTION_KEY, 'base64'));
      const wrong = createKeyEncryption(randomBytes(32));
      for (const row of rows) {
        const text = JSON.stringify(row);
        expect(text).not.toContain('PRIVATE KEY');
        expect(text).not.toContain('BEGIN');
        expectNoPrivateMember(row.publicJwk);
        // No JWK private member anywhere in the row, in whatever column.
        expect(text).not.toMatch(new RegExp(`"(${PRIVATE_MEMBERS.join('|')})":`));

        if (row.state === 'revoked') {
          expect(row.privateKey).toBeNull();
          continue;
        }
        expect(row.privateKey).toMatch(SEALED);
        expect(wrong.open(row.privateKey!, row.kid)).toBeNull();
        // Bound to its kid: a sealed key copied onto another row does not open there.
        const otherKid = rows.find((other) => other.kid !== row.kid)!.kid;
        expect(right.open(row.privateKey!, otherKid)).toBeNull();

        // Control: the right key opens it, and what it holds is the private half of the published key.
        const pem = right.open(row.privateKey!, row.kid)!.toString('utf8');
        expect(pem).toContain('-----BEGIN PRIVATE KEY-----');
        const token = await new SignJWT({}).setProtectedHeader({ alg }).sign(await importPKCS8(pem, alg));
        await expect(jwtVerify(token, await importJWK(row.publicJwk as JWK, alg))).resolves.toBeTruthy();
      }
    },
    OWN_DATABASE_TIMEOUT,
  );
});
