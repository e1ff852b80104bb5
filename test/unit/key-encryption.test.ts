import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import type { Logger } from '../../src/logger.js';
import { createKeyEncryption, loadKeyEncryptionKey } from '../../src/tokens/key-encryption.js';

const FILE = 'key-encryption-key';

/** A logger that records its warn calls and drops everything else. */
function recordingLogger() {
  const warnings: unknown[][] = [];
  const noop = () => {};
  const logger = { warn: (...args: unknown[]) => warnings.push(args), error: noop, info: noop, debug: noop, trace: noop, fatal: noop };
  return { logger: logger as unknown as Logger, warnings };
}

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'authgraph-kek-'));
  tempDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('createKeyEncryption (AES-256-GCM, bound to a label)', () => {
  const key = randomBytes(32);
  const encryption = createKeyEncryption(key);
  const plaintext = Buffer.from('-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n');

  it('opens what it sealed, under the same key and label', () => {
    const sealed = encryption.seal(plaintext, 'kid-1');
    expect(sealed).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(encryption.open(sealed, 'kid-1')?.equals(plaintext)).toBe(true);
    // A fresh key with the same bytes opens it too (a restart with the same KEY_ENCRYPTION_KEY).
    expect(createKeyEncryption(Buffer.from(key)).open(sealed, 'kid-1')?.equals(plaintext)).toBe(true);
  });

  it('does not hold the plaintext in clear, and seals the same plaintext differently each time', () => {
    const a = encryption.seal(plaintext, 'kid-1');
    const b = encryption.seal(plaintext, 'kid-1');
    expect(a).not.toBe(b);
    for (const sealed of [a, b]) {
      expect(sealed).not.toContain('PRIVATE KEY');
      expect(sealed).not.toContain(plaintext.toString('base64url').slice(0, 16));
    }
  });

  it('gives null under another key', () => {
    const sealed = encryption.seal(plaintext, 'kid-1');
    expect(createKeyEncryption(randomBytes(32)).open(sealed, 'kid-1')).toBeNull();
  });

  it('gives null under another label: a sealed private key cannot be moved to another kid', () => {
    const sealed = encryption.seal(plaintext, 'kid-1');
    expect(encryption.open(sealed, 'kid-2')).toBeNull();
    expect(encryption.open(sealed, '')).toBeNull();
  });

  it('gives null for a tampered ciphertext, iv or tag, and for a malformed value', () => {
    const sealed = encryption.seal(plaintext, 'kid-1');
    const parts = sealed.split('.');
    const flipped = (part: string) => {
      const bytes = Buffer.from(part, 'base64url');
      bytes[0]! ^= 0x01;
      return bytes.toString('base64url');
    };
    for (const index of [1, 2, 3]) {
      const tampered = parts.map((part, i) => (i === index ? flipped(part) : part)).join('.');
      expect(encryption.open(tampered, 'kid-1'), `part ${index}`).toBeNull();
    }
    // Truncated ciphertext, a missing tag, another version, not sealed at all.
    const truncated = [parts[0], parts[1], Buffer.from(parts[2]!, 'base64url').subarray(1).toString('base64url'), parts[3]].join('.');
    for (const bad of [truncated, parts.slice(0, 3).join('.'), ['v2', ...parts.slice(1)].join('.'), '', 'garbage']) {
      expect(encryption.open(bad, 'kid-1'), bad).toBeNull();
    }
  });

  it('refuses a key that is not 32 bytes', () => {
    expect(() => createKeyEncryption(randomBytes(31))).toThrow();
    expect(() => createKeyEncryption(randomBytes(33))).toThrow();
  });
});

describe('loadKeyEncryptionKey', () => {
  it('uses KEY_ENCRYPTION_KEY when it is set, and writes nothing to DATA_DIR', () => {
    const dataDir = tempDir();
    const { logger, warnings } = recordingLogger();
    const given = randomBytes(32);
    for (const NODE_ENV of ['production', 'development']) {
      const config = loadConfig({ NODE_ENV, DATA_DIR: dataDir, KEY_ENCRYPTION_KEY: given.toString('hex') });
      expect(loadKeyEncryptionKey(config, logger).equals(given)).toBe(true);
    }
    expect(existsSync(path.join(dataDir, FILE))).toBe(false);
    expect(warnings).toEqual([]);
  });

  it('refuses production without KEY_ENCRYPTION_KEY with a ConfigError naming it, and generates nothing', () => {
    const dataDir = tempDir();
    const { logger } = recordingLogger();
    let err: unknown;
    try {
      loadKeyEncryptionKey(loadConfig({ NODE_ENV: 'production', DATA_DIR: dataDir }), logger);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain('KEY_ENCRYPTION_KEY');
    expect(existsSync(path.join(dataDir, FILE))).toBe(false);
  });

  it('refuses production even when a generated development key is on disk', () => {
    const dataDir = tempDir();
    loadKeyEncryptionKey(loadConfig({ DATA_DIR: dataDir }), recordingLogger().logger);
    expect(existsSync(path.join(dataDir, FILE))).toBe(true);
    expect(() => loadKeyEncryptionKey(loadConfig({ NODE_ENV: 'production', DATA_DIR: dataDir }), recordingLogger().logger)).toThrow(
      ConfigError,
    );
  });

  it('outside production generates 32 bytes into DATA_DIR/key-encryption-key (mode 0600), warning once without the key', () => {
    const dataDir = path.join(tempDir(), 'nested');
    const { logger, warnings } = recordingLogger();
    const key = loadKeyEncryptionKey(loadConfig({ DATA_DIR: dataDir }), logger);
    expect(key).toHaveLength(32);
    const file = path.join(dataDir, FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(Buffer.from(readFileSync(file, 'utf8'), 'base64').equals(key)).toBe(true);
    expect(warnings).toHaveLength(1);
    const warning = JSON.stringify(warnings[0]);
    expect(warning).toContain('KEY_ENCRYPTION_KEY');
    expect(warning).not.toContain(key.toString('base64'));
  });

  it('reuses the generated key on the next load, without warning again', () => {
    const dataDir = tempDir();
    const first = recordingLogger();
    const second = recordingLogger();
    const before = loadKeyEncryptionKey(loadConfig({ DATA_DIR: dataDir }), first.logger);
    const after = loadKeyEncryptionKey(loadConfig({ DATA_DIR: dataDir }), second.logger);
    expect(after.equals(before)).toBe(true);
    expect(first.warnings).toHaveLength(1);
    expect(second.warnings).toEqual([]);
    // Another DATA_DIR gets a key of its own.
    expect(loadKeyEncryptionKey(loadConfig({ DATA_DIR: tempDir() }), second.logger).equals(before)).toBe(false);
  });
});
