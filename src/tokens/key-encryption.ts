import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ConfigError, type Config } from '../config.js';
import type { Logger } from '../logger.js';
import { readOrCreateDevSecret } from './dev-secret.js';

/** AES-256-GCM under KEY_ENCRYPTION_KEY: what keeps stored private keys unreadable from the table. */
export interface KeyEncryption {
  /** `v1.<iv>.<ciphertext>.<tag>` (base64url), bound to `label` (a key's kid) as associated data. */
  seal(plaintext: Buffer, label: string): string;
  /** The plaintext, or null when the key (or the label) is not the one it was sealed with. */
  open(sealed: string, label: string): Buffer | null;
}

const FILE = 'key-encryption-key';
const VERSION = 'v1';
const TAG_BYTES = 16;

export function createKeyEncryption(key: Buffer): KeyEncryption {
  if (key.length !== 32) throw new Error('the key-encryption key must be 32 bytes');
  return {
    seal(plaintext, label) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(label, 'utf8'));
      const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      return [VERSION, iv, ciphertext, cipher.getAuthTag()].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
    },
    open(sealed, label) {
      const [version, iv, ciphertext, tag] = sealed.split('.');
      if (version !== VERSION || !iv || ciphertext === undefined || !tag) return null;
      const tagBytes = Buffer.from(tag, 'base64url');
      if (tagBytes.length !== TAG_BYTES) return null;
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'), { authTagLength: TAG_BYTES });
        decipher.setAAD(Buffer.from(label, 'utf8'));
        decipher.setAuthTag(tagBytes);
        return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]);
      } catch {
        return null;
      }
    },
  };
}

/**
 * KEY_ENCRYPTION_KEY, or outside production one generated into DATA_DIR (with a warning, once).
 * Production without it refuses to start.
 */
export function loadKeyEncryptionKey(config: Config, logger: Logger): Buffer {
  if (config.keys.encryptionKey) return config.keys.encryptionKey;
  if (config.production) {
    throw new ConfigError(
      'KEY_ENCRYPTION_KEY is required when NODE_ENV=production: 32 random bytes as base64 or hex ' +
        '(e.g. `openssl rand -base64 32`). It encrypts the signing keys stored in the database.',
    );
  }
  const stored = readOrCreateDevSecret(
    {
      dataDir: config.dataDir,
      file: FILE,
      generate: () => randomBytes(32).toString('base64'),
      warning:
        'KEY_ENCRYPTION_KEY is not set: generated a development key-encryption key and stored it in DATA_DIR. ' +
        'Set KEY_ENCRYPTION_KEY in production (the server refuses to start there without it).',
    },
    logger,
  );
  const key = Buffer.from(stored, 'base64');
  if (key.length !== 32) throw new ConfigError(`${FILE} in DATA_DIR does not hold 32 bytes of base64: delete it or set KEY_ENCRYPTION_KEY.`);
  return key;
}
