import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeProtectedHeader } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { createAccessTokenCodec } from '../../src/tokens/access-tokens.js';
import { loadSigningKeys, type SigningKeys } from '../../src/tokens/signing-keys.js';
import { ConfigError, loadConfig } from '../../src/config.js';
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
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** Loads keys from an environment; DATA_DIR defaults to a fresh temp dir so nothing touches ./.data. */
function load(env: Record<string, string>, logger: Logger = recordingLogger().logger): Promise<SigningKeys> {
  return loadSigningKeys(loadConfig({ DATA_DIR: tempDir(), ...env }), logger);
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
const subject = () => ({ userId: randomUUID(), sessionId: randomUUID(), roles: ['user'] });

/** Signs with `signer` and verifies with `verifier`; returns the verification outcome. */
async function roundTrip(signer: SigningKeys, verifier: SigningKeys = signer) {
  const now = new Date();
  const issued = await createAccessTokenCodec(signer, codecOptions).sign(subject(), now);
  return { issued, check: await createAccessTokenCodec(verifier, codecOptions).verify(issued.token, now) };
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
      expect(decodeProtectedHeader(issued.token)).toEqual({ alg, typ: 'at+jwt' });
    });
  }

  it('measures JWT_SECRET in UTF-8 bytes, not characters', async () => {
    // 16 × "é" is 16 characters but 32 bytes: enough for HS256. 31 bytes is not.
    await expect(load({ JWT_SECRET: 'é'.repeat(16) })).resolves.toMatchObject({ algorithm: 'HS256' });
    await configErrorOf(load({ JWT_SECRET: `${'é'.repeat(15)}x` }));
  });

  it('refuses to start in production without JWT_SECRET, with a ConfigError naming JWT_SECRET', async () => {
    const dataDir = tempDir();
    const err = await configErrorOf(load({ NODE_ENV: 'production', DATA_DIR: dataDir }));
    expect(err.message).toContain('JWT_SECRET');
    expect(existsSync(path.join(dataDir, 'jwt-secret'))).toBe(false);
  });

  it('refuses in production even when a generated development secret is on disk', async () => {
    const dataDir = tempDir();
    await load({ DATA_DIR: dataDir });
    expect(existsSync(path.join(dataDir, 'jwt-secret'))).toBe(true);
    await configErrorOf(load({ NODE_ENV: 'production', DATA_DIR: dataDir }));
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
    const keys = await load({ DATA_DIR: dataDir }, logger);
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
    await load({ DATA_DIR: dataDir });
    expect(existsSync(path.join(dataDir, 'jwt-secret'))).toBe(true);
  });

  it('stores the generated secret with file mode 0600', async () => {
    const dataDir = tempDir();
    await load({ DATA_DIR: dataDir });
    expect(statSync(path.join(dataDir, 'jwt-secret')).mode & 0o777).toBe(0o600);
  });

  it('reuses the generated secret on the next start, without warning again, so tokens stay valid', async () => {
    const dataDir = tempDir();
    const first = recordingLogger();
    const second = recordingLogger();
    const before = await load({ DATA_DIR: dataDir }, first.logger);
    const secret = readFileSync(path.join(dataDir, 'jwt-secret'), 'utf8');
    const after = await load({ DATA_DIR: dataDir }, second.logger);
    expect(readFileSync(path.join(dataDir, 'jwt-secret'), 'utf8')).toBe(secret);
    expect(first.warnings).toHaveLength(1);
    expect(second.warnings).toHaveLength(0);
    const { check } = await roundTrip(before, after);
    expect(check.ok).toBe(true);
    expect(after.successorKey.equals(before.successorKey)).toBe(true);
  });

  it('generates a different secret for a different DATA_DIR, so its tokens do not verify elsewhere', async () => {
    const a = await load({ DATA_DIR: tempDir() });
    const b = await load({ DATA_DIR: tempDir() });
    const { check } = await roundTrip(a, b);
    expect(check).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('generates a secret long enough for HS512', async () => {
    const keys = await load({ JWT_ALGORITHM: 'HS512', DATA_DIR: tempDir() });
    expect((await roundTrip(keys)).check.ok).toBe(true);
  });

  it('prefers JWT_SECRET over a generated secret on disk', async () => {
    const dataDir = tempDir();
    const generated = await load({ DATA_DIR: dataDir });
    const configured = await load({ DATA_DIR: dataDir, JWT_SECRET: 'c'.repeat(32) });
    const { check } = await roundTrip(generated, configured);
    expect(check).toEqual({ ok: false, reason: 'bad_signature' });
  });
});

describe('asymmetric signing keys', () => {
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
      expect(decodeProtectedHeader(issued.token)).toEqual({ alg, typ: 'at+jwt' });
    });

    it(`derives the ${alg} public key from JWT_PRIVATE_KEY when JWT_PUBLIC_KEY is not given`, async () => {
      const keys = await load({ JWT_ALGORITHM: alg, JWT_PRIVATE_KEY: pair.privateKey });
      expect((await roundTrip(keys)).check.ok).toBe(true);
      // The derived key verifies what a configuration with the explicit public key signs.
      const explicit = await load({ JWT_ALGORITHM: alg, JWT_PRIVATE_KEY: pair.privateKey, JWT_PUBLIC_KEY: pair.publicKey });
      expect((await roundTrip(explicit, keys)).check.ok).toBe(true);
    });

    it(`reads ${alg} PEM keys written with literal \\n escapes`, async () => {
      const keys = await load({
        JWT_ALGORITHM: alg,
        JWT_PRIVATE_KEY: escaped(pair.privateKey),
        JWT_PUBLIC_KEY: escaped(pair.publicKey),
      });
      expect((await roundTrip(keys)).check.ok).toBe(true);
      const privateOnly = await load({ JWT_ALGORITHM: alg, JWT_PRIVATE_KEY: escaped(pair.privateKey) });
      expect((await roundTrip(privateOnly)).check.ok).toBe(true);
    });

    it(`refuses ${alg} without JWT_PRIVATE_KEY, with a ConfigError naming JWT_PRIVATE_KEY`, async () => {
      const err = await configErrorOf(load({ JWT_ALGORITHM: alg, JWT_PUBLIC_KEY: pair.publicKey }));
      expect(err.message).toContain('JWT_PRIVATE_KEY');
    });
  }

  it('keeps the successor key stable for the same private key across starts', async () => {
    const a = await load({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: ec.privateKey });
    const b = await load({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: escaped(ec.privateKey) });
    expect(a.successorKey.equals(b.successorKey)).toBe(true);
  });

  it('signs RS512 tokens with a 2048-bit key', async () => {
    const keys = await load({ JWT_ALGORITHM: 'RS512', JWT_PRIVATE_KEY: rsa.privateKey });
    const { issued, check } = await roundTrip(keys);
    expect(check.ok).toBe(true);
    expect(decodeProtectedHeader(issued.token).alg).toBe('RS512');
  });

  it('refuses a 1024-bit RSA key with a ConfigError naming JWT_PRIVATE_KEY', async () => {
    const weak = rsaPair(1024);
    const err = await configErrorOf(load({ JWT_ALGORITHM: 'RS256', JWT_PRIVATE_KEY: weak.privateKey }));
    expect(err.message).toContain('JWT_PRIVATE_KEY');
    expect(err.message).toContain('2048');
  });

  it('refuses a JWT_PUBLIC_KEY that does not match JWT_PRIVATE_KEY', async () => {
    const other = rsaPair();
    const err = await configErrorOf(
      load({ JWT_ALGORITHM: 'RS256', JWT_PRIVATE_KEY: rsa.privateKey, JWT_PUBLIC_KEY: other.publicKey }),
    );
    expect(err.message).toContain('JWT_PUBLIC_KEY');
  });

  it('refuses a mismatched EdDSA public key too', async () => {
    const other = edPair();
    const err = await configErrorOf(
      load({ JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY: ed.privateKey, JWT_PUBLIC_KEY: other.publicKey }),
    );
    expect(err.message).toContain('JWT_PUBLIC_KEY');
  });

  it('refuses an ES256 key given for EdDSA with a ConfigError', async () => {
    const err = await configErrorOf(load({ JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY: ec.privateKey }));
    expect(err.message).toContain('JWT_PRIVATE_KEY');
    expect(err.message).toContain('EdDSA');
  });

  it('refuses a P-384 key given for ES256 with a ConfigError', async () => {
    const p384 = ecPair('P-384');
    const err = await configErrorOf(load({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: p384.privateKey }));
    expect(err.message).toContain('ES256');
  });

  it('refuses an Ed25519 key given for ES256 with a ConfigError', async () => {
    await configErrorOf(load({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: ed.privateKey }));
  });

  it('refuses an EC key given for RS256 with a ConfigError', async () => {
    await configErrorOf(load({ JWT_ALGORITHM: 'RS256', JWT_PRIVATE_KEY: ec.privateKey }));
  });

  it('refuses a JWT_PRIVATE_KEY that is not a PEM private key, naming JWT_PRIVATE_KEY', async () => {
    const err = await configErrorOf(load({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: 'not a key' }));
    expect(err.message).toContain('JWT_PRIVATE_KEY');
    // A public key is not a private key either.
    await configErrorOf(load({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: ec.publicKey }));
  });

  it('refuses a JWT_PUBLIC_KEY that is not a PEM public key', async () => {
    const err = await configErrorOf(
      load({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: ec.privateKey, JWT_PUBLIC_KEY: 'garbage' }),
    );
    expect(err.message).toContain('JWT_PUBLIC_KEY');
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
    expect((await roundTrip(theirs, mine)).check).toEqual({ ok: false, reason: 'bad_signature' });
  });
});
