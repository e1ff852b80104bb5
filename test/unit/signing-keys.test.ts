import { createHash, createPrivateKey, generateKeyPairSync, hkdfSync, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeProtectedHeader } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAccessTokenCodec } from '../../src/tokens/access-tokens.js';
import type { SigningKeys } from '../../src/tokens/signing-keys.js';
import { openKeys } from '../support/keys.js';
import { TEST_JWT_SECRET, TEST_KEY_ENCRYPTION_KEY } from '../support/app.js';
import { openTestDatabase, OWN_DATABASE_TIMEOUT } from '../support/database.js';
import { inspect, mint } from '../support/forge.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import type { DatabaseHandle } from '../../src/db/client.js';
import { signingKeys } from '../../src/db/schema.js';
import type { Logger } from '../../src/logger.js';

/** A logger that records its warn calls and drops everything else. */
function recordingLogger() {
  const warnings: unknown[][] = [];
  const noop = () => {};
  const logger = {
    warn: (...args: unknown[]) => warnings.push(args),
    error: noop,
    info: noop,
    debug: noop,
    trace: noop,
    fatal: noop,
  } as unknown as Logger;
  return { logger, warnings };
}

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'authgraph-keys-'));
  tempDirs.push(dir);
  return dir;
}
const opened: SigningKeys[] = [];
const databases: DatabaseHandle[] = [];
// Closed after each test: keys on a database of their own close it too, and PostgreSQL's
// connections are shared with every other test file running meanwhile.
afterEach(async () => {
  for (const keys of opened.splice(0)) await keys.close();
});
afterAll(async () => {
  for (const database of databases) await database.close();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** A database for several loads in one test (closed after the file). */
async function sharedDatabase(): Promise<DatabaseHandle> {
  const database = await openTestDatabase();
  databases.push(database);
  return database;
}

/**
 * Loads keys from an environment; DATA_DIR defaults to a fresh temp dir so nothing touches ./.data.
 * The stored key set (RS*, ES256, EdDSA) is on `database`, or on a fresh database of its own.
 */
async function load(
  env: Record<string, string>,
  logger: Logger = recordingLogger().logger,
  database?: DatabaseHandle,
): Promise<SigningKeys> {
  const keys = await openKeys(loadConfig({ DATA_DIR: tempDir(), KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY, ...env }), logger, database);
  opened.push(keys);
  return keys;
}

async function configErrorOf(promise: Promise<unknown>): Promise<ConfigError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  return err as ConfigError;
}

const codecOptions = { issuer: 'authgraph', audience: 'authgraph', ttlSeconds: 900 };
const subject = () => ({ userId: randomUUID(), sessionId: randomUUID(), roles: ['user'], amr: ['pwd'], authTime: new Date() });

/** Signs with `signer` and verifies with `verifier`; returns the verification outcome. */
async function roundTrip(signer: SigningKeys, verifier: SigningKeys = signer) {
  const now = new Date();
  const issued = await createAccessTokenCodec(signer.ring, codecOptions).sign(subject(), now);
  return { issued, check: await createAccessTokenCodec(verifier.ring, codecOptions).verify(issued.token, now) };
}

/** `token` with its header's kid replaced (or removed, for undefined), signature kept. */
function withKid(token: string, kid: string | undefined): string {
  const [, payload, signature] = token.split('.');
  const header = Buffer.from(JSON.stringify({ ...inspect(token).header, kid })).toString('base64url');
  return `${header}.${payload}.${signature}`;
}

type PemPair = { privateKey: string; publicKey: string };
const spki = { type: 'spki', format: 'pem' } as const;
const pkcs8 = { type: 'pkcs8', format: 'pem' } as const;
const rsaPair = (modulusLength = 2048): PemPair =>
  generateKeyPairSync('rsa', { modulusLength, publicKeyEncoding: spki, privateKeyEncoding: pkcs8 });
const ecPair = (namedCurve = 'P-256'): PemPair =>
  generateKeyPairSync('ec', { namedCurve, publicKeyEncoding: spki, privateKeyEncoding: pkcs8 });
const edPair = (): PemPair => generateKeyPairSync('ed25519', { publicKeyEncoding: spki, privateKeyEncoding: pkcs8 });
/** A PEM as it often arrives through an environment variable: one line with literal \n. */
const escaped = (pem: string) => pem.replace(/\n/g, '\\n');


describe('the algorithm when JWT_ALGORITHM is not set', () => {
  it('is HS256 when JWT_SECRET is set, so a token signed before the upgrade (no kid) still verifies', async () => {
    const keys = await load({ JWT_SECRET: TEST_JWT_SECRET });
    expect(keys.algorithm).toBe('HS256');
    expect(keys.manager).toBeNull();
    // What the code before signing keys issued: HS256 with the secret, no kid in the header.
    const now = new Date();
    const iat = Math.floor(now.getTime() / 1000);
    const claims = { iss: 'authgraph', aud: 'authgraph', sub: randomUUID(), sid: randomUUID(), jti: randomUUID(), iat, exp: iat + 900, roles: ['user'] };
    const preUpgrade = await mint({ claims, secret: new TextEncoder().encode(TEST_JWT_SECRET) });
    expect(inspect(preUpgrade).header).toEqual({ alg: 'HS256', typ: 'at+jwt' });
    const codec = createAccessTokenCodec(keys.ring, codecOptions);
    expect(await codec.verify(preUpgrade, now)).toEqual({
      ok: true,
      // Signed before sessions recorded how they were authenticated: no factor, no auth_time.
      claims: { sub: claims.sub, sid: claims.sid, jti: claims.jti, iat, exp: iat + 900, roles: ['user'], amr: [] },
    });
    // A refresh retried across the upgrade gets the successor it got before: same derivation from the secret.
    const before = Buffer.from(hkdfSync('sha256', Buffer.from(TEST_JWT_SECRET), Buffer.alloc(0), 'authgraph refresh-token successor', 32));
    expect(keys.successorKey.equals(before)).toBe(true);
    // And what it signs now carries a kid and verifies too.
    const { issued, check } = await roundTrip(keys);
    expect(check.ok).toBe(true);
    expect(inspect(issued.token).header).toEqual({ alg: 'HS256', typ: 'at+jwt', kid: expect.any(String) });
  });

  it(
    'is ES256 when JWT_SECRET is not set: a key generated into the stored set signs, and no development secret is written',
    async () => {
      const dataDir = tempDir();
      const { logger, warnings } = recordingLogger();
      const keys = await load({ DATA_DIR: dataDir }, logger);
      expect(keys.algorithm).toBe('ES256');
      const listed = await keys.manager!.list();
      expect(listed).toEqual([expect.objectContaining({ algorithm: 'ES256', state: 'current', source: 'generated' })]);
      const { issued, check } = await roundTrip(keys);
      expect(check.ok).toBe(true);
      expect(inspect(issued.token).header).toEqual({ alg: 'ES256', typ: 'at+jwt', kid: listed[0]!.kid });
      expect(existsSync(path.join(dataDir, 'jwt-secret'))).toBe(false);
      expect(warnings).toHaveLength(0);
    },
    OWN_DATABASE_TIMEOUT,
  );
});

describe('symmetric signing keys', () => {
  const cases = [
    { alg: 'HS256', bytes: 32 },
    { alg: 'HS384', bytes: 48 },
    { alg: 'HS512', bytes: 64 },
  ] as const;

  for (const { alg, bytes } of cases) {
    it(`refuses a ${alg} JWT_SECRET shorter than ${bytes} bytes with a ConfigError naming JWT_SECRET`, async () => {
      const err = await configErrorOf(load({ JWT_ALGORITHM: alg, JWT_SECRET: 'x'.repeat(bytes - 1) }));
      expect(err.message).toContain('JWT_SECRET');
      expect(err.message).toContain(String(bytes));
    });

    it(`accepts a ${alg} JWT_SECRET of exactly ${bytes} bytes and signs tokens that verify`, async () => {
      const keys = await load({ JWT_ALGORITHM: alg, JWT_SECRET: 'x'.repeat(bytes) });
      expect(keys.algorithm).toBe(alg);
      const { issued, check } = await roundTrip(keys);
      expect(check.ok).toBe(true);
      expect(decodeProtectedHeader(issued.token)).toEqual({ alg, typ: 'at+jwt', kid: expect.any(String) });
    });
  }

  it('measures JWT_SECRET in UTF-8 bytes, not characters', async () => {
    // 16 × "é" is 16 characters but 32 bytes: enough for HS256. 31 bytes is not.
    await expect(load({ JWT_SECRET: 'é'.repeat(16) })).resolves.toMatchObject({ algorithm: 'HS256' });
    await configErrorOf(load({ JWT_SECRET: `${'é'.repeat(15)}x` }));
  });

  it('gives its tokens a kid that names the secret without revealing it', async () => {
    const secret = 'k'.repeat(20) + randomUUID();
    const keys = await load({ JWT_SECRET: secret });
    const kid = inspect((await roundTrip(keys)).issued.token).header.kid as string;
    const digest = createHash('sha256').update(secret).digest();
    for (const revealing of [secret, Buffer.from(secret).toString('base64url'), Buffer.from(secret).toString('hex'), digest.toString('base64url').slice(0, 8), digest.toString('hex').slice(0, 8)]) {
      expect(kid).not.toContain(revealing);
    }
    expect(kid.length).toBeLessThan(secret.length);
    // The same secret gives the same kid (tokens survive a restart); another secret another kid.
    expect(inspect((await roundTrip(await load({ JWT_SECRET: secret }))).issued.token).header.kid).toBe(kid);
    expect(inspect((await roundTrip(await load({ JWT_SECRET: `${secret}x` }))).issued.token).header.kid).not.toBe(kid);
  });

  it('refuses an HS token whose kid is not its secret\'s, even when the signature is good', async () => {
    const keys = await load({ JWT_SECRET: TEST_JWT_SECRET });
    const { issued } = await roundTrip(keys);
    const codec = createAccessTokenCodec(keys.ring, codecOptions);
    const now = new Date();
    expect(await codec.verify(withKid(issued.token, 'hs-someone-else'), now)).toEqual({ ok: false, reason: 'unknown_key' });
  });

  it('refuses to start in production without JWT_SECRET, with a ConfigError naming JWT_SECRET', async () => {
    const dataDir = tempDir();
    const err = await configErrorOf(load({ JWT_ALGORITHM: 'HS256', NODE_ENV: 'production', DATA_DIR: dataDir }));
    expect(err.message).toContain('JWT_SECRET');
    expect(existsSync(path.join(dataDir, 'jwt-secret'))).toBe(false);
  });

  it('refuses in production even when a generated development secret is on disk', async () => {
    const dataDir = tempDir();
    await load({ JWT_ALGORITHM: 'HS256', DATA_DIR: dataDir });
    expect(existsSync(path.join(dataDir, 'jwt-secret'))).toBe(true);
    await configErrorOf(load({ JWT_ALGORITHM: 'HS256', NODE_ENV: 'production', DATA_DIR: dataDir }));
  });

  it('uses a JWT_SECRET given in production and writes nothing to DATA_DIR', async () => {
    const dataDir = tempDir();
    const { logger, warnings } = recordingLogger();
    await load({ NODE_ENV: 'production', DATA_DIR: dataDir, JWT_SECRET: 'p'.repeat(32) }, logger);
    expect(existsSync(path.join(dataDir, 'jwt-secret'))).toBe(false);
    expect(warnings).toHaveLength(0);
  });

  it('generates a secret in DATA_DIR outside production, warning once', async () => {
    const dataDir = tempDir();
    const { logger, warnings } = recordingLogger();
    const keys = await load({ JWT_ALGORITHM: 'HS256', DATA_DIR: dataDir }, logger);
    expect(keys.algorithm).toBe('HS256');
    const secret = readFileSync(path.join(dataDir, 'jwt-secret'), 'utf8');
    expect(Buffer.byteLength(secret)).toBeGreaterThanOrEqual(64);
    expect(warnings).toHaveLength(1);
    expect(JSON.stringify(warnings[0])).toContain('JWT_SECRET');
    // The warning must not leak the secret itself.
    expect(JSON.stringify(warnings[0])).not.toContain(secret);
  });

  it('creates a missing DATA_DIR for the generated secret', async () => {
    const dataDir = path.join(tempDir(), 'nested', 'data');
    await load({ JWT_ALGORITHM: 'HS256', DATA_DIR: dataDir });
    expect(existsSync(path.join(dataDir, 'jwt-secret'))).toBe(true);
  });

  it('stores the generated secret with file mode 0600', async () => {
    const dataDir = tempDir();
    await load({ JWT_ALGORITHM: 'HS256', DATA_DIR: dataDir });
    expect(statSync(path.join(dataDir, 'jwt-secret')).mode & 0o777).toBe(0o600);
  });

  it('reuses the generated secret on the next start, without warning again, so tokens stay valid', async () => {
    const dataDir = tempDir();
    const first = recordingLogger();
    const second = recordingLogger();
    const before = await load({ JWT_ALGORITHM: 'HS256', DATA_DIR: dataDir }, first.logger);
    const secret = readFileSync(path.join(dataDir, 'jwt-secret'), 'utf8');
    const after = await load({ JWT_ALGORITHM: 'HS256', DATA_DIR: dataDir }, second.logger);
    expect(readFileSync(path.join(dataDir, 'jwt-secret'), 'utf8')).toBe(secret);
    expect(first.warnings).toHaveLength(1);
    expect(second.warnings).toHaveLength(0);
    const { check } = await roundTrip(before, after);
    expect(check.ok).toBe(true);
    expect(after.successorKey.equals(before.successorKey)).toBe(true);
  });

  it('generates a different secret for a different DATA_DIR, so its tokens do not verify elsewhere', async () => {
    const a = await load({ JWT_ALGORITHM: 'HS256', DATA_DIR: tempDir() });
    const b = await load({ JWT_ALGORITHM: 'HS256', DATA_DIR: tempDir() });
    const { issued, check } = await roundTrip(a, b);
    expect(check).toEqual({ ok: false, reason: 'unknown_key' });
    // Without the kid (as a pre-upgrade token would be), the signature still does not verify.
    const codec = createAccessTokenCodec(b.ring, codecOptions);
    expect(await codec.verify(withKid(issued.token, undefined), new Date())).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('generates a secret long enough for HS512', async () => {
    const keys = await load({ JWT_ALGORITHM: 'HS512', DATA_DIR: tempDir() });
    expect((await roundTrip(keys)).check.ok).toBe(true);
  });

  it('prefers JWT_SECRET over a generated secret on disk', async () => {
    const dataDir = tempDir();
    const generated = await load({ JWT_ALGORITHM: 'HS256', DATA_DIR: dataDir });
    const configured = await load({ DATA_DIR: dataDir, JWT_SECRET: 'c'.repeat(32) });
    const { issued, check } = await roundTrip(generated, configured);
    expect(check).toEqual({ ok: false, reason: 'unknown_key' });
    const codec = createAccessTokenCodec(configured.ring, codecOptions);
    expect(await codec.verify(withKid(issued.token, undefined), new Date())).toEqual({ ok: false, reason: 'bad_signature' });
  });
});

// Each test that loads a stored key set opens a database of its own (PGlite takes seconds to start).
describe('asymmetric signing keys', { timeout: OWN_DATABASE_TIMEOUT }, () => {
  const rsa = rsaPair();
  const ec = ecPair();
  const ed = edPair();
  const cases = [
    { alg: 'RS256', pair: rsa },
    { alg: 'ES256', pair: ec },
    { alg: 'EdDSA', pair: ed },
  ] as const;

  for (const { alg, pair } of cases) {
    it(`signs and verifies ${alg} tokens with JWT_PRIVATE_KEY and JWT_PUBLIC_KEY`, async () => {
      const keys = await load({ JWT_ALGORITHM: alg, JWT_PRIVATE_KEY: pair.privateKey, JWT_PUBLIC_KEY: pair.publicKey });
      expect(keys.algorithm).toBe(alg);
      const { issued, check } = await roundTrip(keys);
      expect(check.ok).toBe(true);
      expect(decodeProtectedHeader(issued.token)).toEqual({ alg, typ: 'at+jwt', kid: expect.any(String) });
    });

    it(`derives the ${alg} public key from JWT_PRIVATE_KEY when JWT_PUBLIC_KEY is not given`, async () => {
      const database = await sharedDatabase();
      const keys = await load({ JWT_ALGORITHM: alg, JWT_PRIVATE_KEY: pair.privateKey }, undefined, database);
      expect((await roundTrip(keys)).check.ok).toBe(true);
      // The derived key verifies what a configuration with the explicit public key signs.
      const explicit = await load({ JWT_ALGORITHM: alg, JWT_PRIVATE_KEY: pair.privateKey, JWT_PUBLIC_KEY: pair.publicKey }, undefined, database);
      expect((await roundTrip(explicit, keys)).check.ok).toBe(true);
    });

    it(`reads ${alg} PEM keys written with literal \\n escapes`, async () => {
      const database = await sharedDatabase();
      const keys = await load(
        { JWT_ALGORITHM: alg, JWT_PRIVATE_KEY: escaped(pair.privateKey), JWT_PUBLIC_KEY: escaped(pair.publicKey) },
        undefined,
        database,
      );
      expect((await roundTrip(keys)).check.ok).toBe(true);
      const privateOnly = await load({ JWT_ALGORITHM: alg, JWT_PRIVATE_KEY: escaped(pair.privateKey) }, undefined, database);
      expect((await roundTrip(privateOnly)).check.ok).toBe(true);
    });
  }

  for (const alg of ['RS256', 'RS384', 'RS512', 'ES256', 'EdDSA'] as const) {
    it(`generates a ${alg} key into the set without JWT_PRIVATE_KEY, and signs with it`, async () => {
      const { logger, warnings } = recordingLogger();
      const keys = await load({ JWT_ALGORITHM: alg }, logger);
      expect(keys.algorithm).toBe(alg);
      const listed = await keys.manager!.list();
      expect(listed).toEqual([expect.objectContaining({ algorithm: alg, state: 'current', source: 'generated' })]);
      const { issued, check } = await roundTrip(keys);
      expect(check.ok).toBe(true);
      expect(decodeProtectedHeader(issued.token)).toEqual({ alg, typ: 'at+jwt', kid: listed[0]!.kid });
      const published = JSON.parse(keys.ring.published()!.body) as { keys: Record<string, string>[] };
      expect(published.keys).toEqual([expect.objectContaining({ kid: listed[0]!.kid, alg, use: 'sig' })]);
      if (alg.startsWith('RS')) expect(Buffer.from(published.keys[0]!.n!, 'base64url').length * 8).toBeGreaterThanOrEqual(2048);
      expect(warnings).toHaveLength(0);
    });
  }

  it('derives the refresh successor key from KEY_ENCRYPTION_KEY, not a generated signing key: it survives a new signing key', async () => {
    const database = await sharedDatabase();
    const first = await load({ JWT_ALGORITHM: 'ES256' }, undefined, database);
    await first.manager!.rotate({ immediately: true });
    const again = await load({ JWT_ALGORITHM: 'ES256' }, undefined, database);
    expect(again.successorKey.equals(first.successorKey)).toBe(true);
    const otherKek = await load({ JWT_ALGORITHM: 'ES256', KEY_ENCRYPTION_KEY: Buffer.alloc(32, 9).toString('hex') });
    expect(otherKek.successorKey.equals(first.successorKey)).toBe(false);
  });

  it('derives it from JWT_PRIVATE_KEY when one is given, as before the key set existed: a retry across the upgrade keeps its successor', async () => {
    const database = await sharedDatabase();
    const a = await load({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: ec.privateKey }, undefined, database);
    const b = await load({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: escaped(ec.privateKey) }, undefined, database);
    expect(a.successorKey.equals(b.successorKey)).toBe(true);
    // What the code before the key set derived: HKDF over the key's PKCS#8 DER.
    const der = createPrivateKey(ec.privateKey).export({ type: 'pkcs8', format: 'der' });
    const before = Buffer.from(hkdfSync('sha256', der, Buffer.alloc(0), 'authgraph refresh-token successor', 32));
    expect(a.successorKey.equals(before)).toBe(true);
  });

  it('signs RS512 tokens with a 2048-bit key', async () => {
    const keys = await load({ JWT_ALGORITHM: 'RS512', JWT_PRIVATE_KEY: rsa.privateKey });
    const { issued, check } = await roundTrip(keys);
    expect(check.ok).toBe(true);
    expect(decodeProtectedHeader(issued.token).alg).toBe('RS512');
  });

  // A refused key fails before the database is touched: these share one.
  describe('refusals', () => {
    let database: DatabaseHandle;
    beforeAll(async () => {
      database = await sharedDatabase();
    });
    const refused = (env: Record<string, string>) => configErrorOf(load(env, undefined, database));

    it('refuses a 1024-bit RSA key with a ConfigError naming JWT_PRIVATE_KEY', async () => {
      const weak = rsaPair(1024);
      const err = await refused({ JWT_ALGORITHM: 'RS256', JWT_PRIVATE_KEY: weak.privateKey });
      expect(err.message).toContain('JWT_PRIVATE_KEY');
      expect(err.message).toContain('2048');
    });

    it('refuses a JWT_PUBLIC_KEY that does not match JWT_PRIVATE_KEY', async () => {
      const other = rsaPair();
      const err = await refused({ JWT_ALGORITHM: 'RS256', JWT_PRIVATE_KEY: rsa.privateKey, JWT_PUBLIC_KEY: other.publicKey });
      expect(err.message).toContain('JWT_PUBLIC_KEY');
    });

    it('refuses JWT_PUBLIC_KEY given without JWT_PRIVATE_KEY instead of ignoring it', async () => {
      const err = await refused({ JWT_ALGORITHM: 'ES256', JWT_PUBLIC_KEY: ec.publicKey });
      expect(err.message).toContain('JWT_PUBLIC_KEY');
      expect(err.message).toContain('JWT_PRIVATE_KEY');
    });

    it('refuses a mismatched EdDSA public key too', async () => {
      const other = edPair();
      const err = await refused({ JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY: ed.privateKey, JWT_PUBLIC_KEY: other.publicKey });
      expect(err.message).toContain('JWT_PUBLIC_KEY');
    });

    it('refuses an ES256 key given for EdDSA with a ConfigError', async () => {
      const err = await refused({ JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY: ec.privateKey });
      expect(err.message).toContain('JWT_PRIVATE_KEY');
      expect(err.message).toContain('EdDSA');
    });

    it('refuses a P-384 key given for ES256 with a ConfigError', async () => {
      const p384 = ecPair('P-384');
      const err = await refused({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: p384.privateKey });
      expect(err.message).toContain('ES256');
    });

    it('refuses an Ed25519 key given for ES256 with a ConfigError', async () => {
      await refused({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: ed.privateKey });
    });

    it('refuses an EC key given for RS256 with a ConfigError', async () => {
      await refused({ JWT_ALGORITHM: 'RS256', JWT_PRIVATE_KEY: ec.privateKey });
    });

    it('refuses a JWT_PRIVATE_KEY that is not a PEM private key, naming JWT_PRIVATE_KEY', async () => {
      const err = await refused({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: 'not a key' });
      expect(err.message).toContain('JWT_PRIVATE_KEY');
      // A public key is not a private key either.
      await refused({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: ec.publicKey });
    });

    it('refuses a JWT_PUBLIC_KEY that is not a PEM public key', async () => {
      const err = await refused({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: ec.privateKey, JWT_PUBLIC_KEY: 'garbage' });
      expect(err.message).toContain('JWT_PUBLIC_KEY');
    });

    it('left nothing in the set it shares', async () => {
      expect(await database.db.select().from(signingKeys)).toEqual([]);
    });
  });

  it('does not generate or read a development secret for asymmetric algorithms', async () => {
    const dataDir = tempDir();
    const { logger, warnings } = recordingLogger();
    await load({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: ec.privateKey, DATA_DIR: dataDir }, logger);
    expect(existsSync(path.join(dataDir, 'jwt-secret'))).toBe(false);
    expect(warnings).toHaveLength(0);
  });

  it('does not verify a token signed with another key pair of the same algorithm', async () => {
    const mine = await load({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: ec.privateKey });
    const theirs = await load({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: ecPair().privateKey });
    const { issued, check } = await roundTrip(theirs, mine);
    // Their kid is not in our set; naming our kid instead does not make their signature ours.
    expect(check).toEqual({ ok: false, reason: 'unknown_key' });
    const ours = inspect((await roundTrip(mine)).issued.token).header.kid as string;
    const codec = createAccessTokenCodec(mine.ring, codecOptions);
    expect(await codec.verify(withKid(issued.token, ours), new Date())).toEqual({ ok: false, reason: 'bad_signature' });
  });
});
