import { createHmac, createPrivateKey, createPublicKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { importPKCS8, importSPKI, SignJWT, jwtVerify, type CryptoKey } from 'jose';
import { createAuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import { ConfigError, type Config, type JwtAlgorithm } from '../config.js';
import type { DatabaseHandle } from '../db/client.js';
import type { Logger } from '../logger.js';
import { readOrCreateDevSecret } from './dev-secret.js';
import { createKeyEncryption, loadKeyEncryptionKey } from './key-encryption.js';
import { createStoredKeyRing, KeyDecryptionError, symmetricKeyRing, type KeyRing } from './key-ring.js';
import { createKeyStore, KEY_CHANNEL, storableKey, type KeyChange } from './key-store.js';

/** What `keys list` shows of a key. */
export interface KeyInfo {
  kid: string;
  algorithm: string;
  state: 'next' | 'current' | 'retired' | 'revoked' | 'removed';
  source: 'generated' | 'environment';
  createdAt: Date;
  activatesAt: Date;
  /** For the current key: when it is due to stop signing (null: not by time). */
  retiresAt: Date | null;
  retiredAt: Date | null;
  removeAt: Date | null;
}

/** The operator's commands over the stored key set (the CLI's `keys`). */
export interface KeyManager {
  list(): Promise<KeyInfo[]>;
  /** Performs what is due now (pre-publication, promotion, removal), then reloads this instance's ring. */
  step(): Promise<KeyChange[]>;
  /** Schedules a new key (`next`), or with `immediately` makes one sign at once. Returns its kid. */
  rotate(options?: { immediately?: boolean }): Promise<string>;
  /** Revokes a compromised key: unpublished, its tokens refused everywhere. False when no published key has the kid. */
  retire(kid: string): Promise<boolean>;
  /** Re-reads the key set. */
  reload(): Promise<void>;
}

/** The access-token keys: the ring that signs and verifies, and (for stored keys) their manager. */
export interface SigningKeys {
  /** JWT_ALGORITHM. */
  algorithm: JwtAlgorithm;
  ring: KeyRing;
  /** HMAC key that derives a refresh token's successor from it (see refresh-tokens.ts); it does not change with rotation. */
  successorKey: Buffer;
  /**
   * The key that seals second-factor secrets at rest (TOTP): KEY_ENCRYPTION_KEY (or its generated
   * development key), the one that seals stored signing keys; under HS* without it, a key of its
   * own derived from JWT_SECRET.
   */
  secretsKey: Buffer;
  /** Null for a symmetric key (nothing is stored or rotated). */
  manager: KeyManager | null;
  /**
   * Whether the key-change listener is connected. Null when there is no listener (a symmetric key).
   */
  listening(): boolean | null;
  /** Stops the schedule and the listener. */
  close(): Promise<void>;
}

const MIN_SECRET_BYTES: Partial<Record<JwtAlgorithm, number>> = { HS256: 32, HS384: 48, HS512: 64 };
/** The longest the key set goes unread (it is also re-read on every change notification). */
const MAX_RELOAD_INTERVAL_MS = 60_000;

function deriveSuccessorKey(material: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', material, Buffer.alloc(0), 'authgraph refresh-token successor', 32));
}

/** PEM keys passed through environment variables often carry literal "\n" sequences. */
function pem(value: string): string {
  return value.includes('\\n') ? value.replace(/\\n/g, '\n') : value;
}

async function symmetricKeys(config: Config, logger: Logger): Promise<SigningKeys> {
  const { algorithm } = config.jwt;
  let secret = config.jwt.secret;
  if (!secret) {
    if (config.production) {
      throw new ConfigError('JWT_SECRET is required when NODE_ENV=production.');
    }
    secret = readOrCreateDevSecret(
      {
        dataDir: config.dataDir,
        file: 'jwt-secret',
        generate: () => randomBytes(64).toString('base64url'),
        warning:
          'JWT_SECRET is not set: generated a development secret and stored it in DATA_DIR. ' +
          'Set JWT_SECRET in production (the server refuses to start there without it).',
      },
      logger,
    );
  }
  const bytes = Buffer.from(secret, 'utf8');
  const minimum = MIN_SECRET_BYTES[algorithm] ?? 32;
  if (bytes.length < minimum) {
    throw new ConfigError(`JWT_SECRET must be at least ${minimum} bytes for ${algorithm} (it has ${bytes.length}).`);
  }
  const key = await crypto.subtle.importKey('raw', bytes, { name: 'HMAC', hash: `SHA-${algorithm.slice(2)}` }, false, [
    'sign',
    'verify',
  ]);
  // A kid that names the secret without revealing anything about it.
  const kid = `hs-${createHmac('sha256', bytes).update('authgraph key id').digest('base64url').slice(0, 16)}`;
  return {
    algorithm,
    ring: symmetricKeyRing(key, algorithm, kid),
    successorKey: deriveSuccessorKey(bytes),
    // A deployment under HS* may have no KEY_ENCRYPTION_KEY: its secret then derives one of its own.
    secretsKey: config.keys.encryptionKey ?? Buffer.from(hkdfSync('sha256', bytes, Buffer.alloc(0), 'authgraph second-factor secrets', 32)),
    manager: null,
    listening: () => null,
    close: async () => {},
  };
}

function checkKeyFitsAlgorithm(algorithm: JwtAlgorithm, key: KeyObject): void {
  const details = key.asymmetricKeyDetails;
  if (algorithm.startsWith('RS') && (details?.modulusLength ?? 0) < 2048) {
    throw new ConfigError(`JWT_PRIVATE_KEY must be an RSA key of at least 2048 bits for ${algorithm}.`);
  }
}

/** JWT_PRIVATE_KEY (and JWT_PUBLIC_KEY, if given) as a checked key pair. */
async function environmentKeyPair(config: Config): Promise<{ privateKey: CryptoKey; publicKey: CryptoKey; der: Buffer }> {
  const { algorithm, privateKey, publicKey } = config.jwt;
  let privateObject: KeyObject;
  try {
    privateObject = createPrivateKey(pem(privateKey!));
  } catch {
    throw new ConfigError('JWT_PRIVATE_KEY is not a readable PEM private key.');
  }
  checkKeyFitsAlgorithm(algorithm, privateObject);
  const publicPem = publicKey ? pem(publicKey) : createPublicKey(privateObject).export({ type: 'spki', format: 'pem' }).toString();
  const pkcs8 = privateObject.export({ type: 'pkcs8', format: 'pem' }).toString();
  let pair: { privateKey: CryptoKey; publicKey: CryptoKey };
  try {
    pair = {
      privateKey: await importPKCS8(pkcs8, algorithm, { extractable: true }),
      publicKey: await importSPKI(publicPem, algorithm, { extractable: true }),
    };
  } catch (err) {
    throw new ConfigError(`JWT_PRIVATE_KEY / JWT_PUBLIC_KEY do not fit ${algorithm}: ${(err as Error).message}`);
  }
  // A public key that does not match the private one would reject every token: fail now instead.
  const probe = await new SignJWT({}).setProtectedHeader({ alg: algorithm }).sign(pair.privateKey);
  await jwtVerify(probe, pair.publicKey).catch(() => {
    throw new ConfigError('JWT_PUBLIC_KEY does not match JWT_PRIVATE_KEY.');
  });
  return { ...pair, der: privateObject.export({ type: 'pkcs8', format: 'der' }) };
}

/**
 * The stored key set (RS*, ES256, EdDSA): generated, encrypted and rotated in the database,
 * shared by every instance on it; each keeps it in memory and re-reads it on every change
 * notification and at least every JWKS_MAX_AGE / 2 seconds.
 */
async function storedKeys(config: Config, logger: Logger): Promise<KeysOnDatabase> {
  const { algorithm } = config.jwt;
  // What the environment gives is checked before any database work.
  if (config.jwt.publicKey && !config.jwt.privateKey) {
    throw new ConfigError(
      'JWT_PUBLIC_KEY is set without JWT_PRIVATE_KEY: authgraph signs with keys it generates (or with JWT_PRIVATE_KEY), ' +
        'so a public key alone has no use. Remove it, or give its JWT_PRIVATE_KEY.',
    );
  }
  const environmentPair = config.jwt.privateKey ? await environmentKeyPair(config) : null;
  const kek = loadKeyEncryptionKey(config, logger);
  return async ({ database, clock, schedule, manage = true }) => {
    const encryption = createKeyEncryption(kek);
    const audit = createAuditLog({ db: database.db, clock, logger, retentionDays: config.auditRetentionDays });
    const store = createKeyStore({
      db: database.db,
      clock,
      audit,
      encryption,
      policy: {
        algorithm,
        jwksMaxAgeMs: config.keys.jwksMaxAge * 1000,
        rotationIntervalMs: config.keys.rotationInterval * 1000,
        accessTokenTtlMs: config.accessTokenTtl * 1000,
      },
    });
    const stored = createStoredKeyRing(encryption);

    const reload = () => stored.load(store.published);
    try {
      // Under a wrong KEY_ENCRYPTION_KEY, refuse before writing anything: a key sealed under it
      // (a due rotation, JWT_PRIVATE_KEY) would keep the right key from starting afterwards.
      await reload();
      // Only servers shape the set by their configuration; the CLI changes it only when told to (keys ...).
      if (environmentPair && manage) {
        const key = await storableKey(environmentPair, algorithm, encryption);
        const existing = await store.adoptEnvironmentKey(key);
        if (existing && existing.state !== 'current' && existing.state !== 'next') {
          logger.warn({ kid: key.kid, state: existing.state }, 'JWT_PRIVATE_KEY is a key that was rotated away from or revoked: it does not sign. Remove it from the environment.');
        }
      }
      if (manage) {
        await store.step();
        await reload();
      }
    } catch (err) {
      if (err instanceof KeyDecryptionError) throw new ConfigError(err.message);
      throw err;
    }

    const manager: KeyManager = {
      list: async () => {
        const rows = await store.all();
        const next = rows.find((row) => row.state === 'next');
        const interval = config.keys.rotationInterval * 1000;
        return rows.map(({ publicJwk: _p, privateKey: _k, ...info }) => ({
          ...info,
          // When the current key stops signing: when the waiting key takes over, else at its next rotation.
          retiresAt:
            info.state !== 'current'
              ? null
              : next
                ? next.activatesAt
                : info.source === 'generated' && interval > 0
                  ? new Date(info.activatesAt.getTime() + interval)
                  : null,
        }));
      },
      step: async () => {
        const changes = await store.step();
        await reload();
        return changes;
      },
      rotate: async (rotation = {}) => {
        const kid = await store.rotate(rotation.immediately ?? false);
        await reload();
        return kid;
      },
      retire: async (kid) => {
        const retired = await store.revoke(kid);
        if (retired) stored.drop(kid);
        await reload();
        return retired;
      },
      reload,
    };

    const guarded = (what: string, work: () => Promise<unknown>) => () => {
      work().catch((err: unknown) => logger.warn({ err }, `signing keys: ${what} failed; the keys in memory stay in use`));
    };
    let listening = false;
    const reloadOnListening = guarded('reload after the listener connected', reload);
    const listener = await database.listen(KEY_CHANNEL, {
      onMessage: (revokedKid) => {
        if (revokedKid) stored.drop(revokedKid);
        guarded('reload after a change', reload)();
      },
      // (Re)connected: a change may have been missed meanwhile.
      onListening: () => {
        listening = true;
        reloadOnListening();
      },
      onLost: () => {
        listening = false;
      },
    });
    // One tick at a time (a slow database must not pile steps up); the reload runs even when the
    // step fails (a read-only replica after a failover), so the instance still follows the set.
    const tickMs = Math.min((config.keys.jwksMaxAge * 1000) / 2, MAX_RELOAD_INTERVAL_MS);
    let ticking = false;
    const tick = async () => {
      if (ticking) return;
      ticking = true;
      try {
        await store.step();
      } finally {
        ticking = false;
        await reload();
      }
    };
    const timer = schedule ? setInterval(guarded('the scheduled step', tick), tickMs) : null;
    timer?.unref();

    return {
      algorithm,
      ring: stored.ring,
      // Not from a signing key: a refresh retried across a rotation must still get the same successor.
      // From JWT_PRIVATE_KEY when given, as before the key set existed (a retry across the upgrade
      // still gets its successor); else from KEY_ENCRYPTION_KEY.
      successorKey: deriveSuccessorKey(environmentPair?.der ?? kek),
      secretsKey: kek,
      manager,
      listening: () => listening,
      close: async () => {
        if (timer) clearInterval(timer);
        listening = false;
        await listener.stop();
      },
    };
  };
}

/** Opens the keys on a database: the second half of prepareSigningKeys. */
export type KeysOnDatabase = (on: {
  database: DatabaseHandle;
  clock: Clock;
  schedule: boolean;
  /** Adopt JWT_PRIVATE_KEY and perform the steps due at opening (default); the CLI only loads. */
  manage?: boolean;
}) => Promise<SigningKeys>;

/**
 * Checks what the configuration gives for the access-token keys (JWT_SECRET, JWT_PRIVATE_KEY,
 * KEY_ENCRYPTION_KEY), before any database work; the result opens them on a database: the
 * symmetric key, or the stored key set (RS*, ES256, EdDSA). `schedule` runs the rotation
 * schedule and the periodic reload (the server); tests call `manager.step()` themselves.
 */
export async function prepareSigningKeys(config: Config, logger: Logger): Promise<KeysOnDatabase> {
  if (config.jwt.algorithm.startsWith('HS')) {
    const keys = await symmetricKeys(config, logger);
    return async () => keys;
  }
  return storedKeys(config, logger);
}

export interface OpenSigningKeysOptions {
  config: Config;
  logger: Logger;
  database: DatabaseHandle;
  clock: Clock;
  schedule: boolean;
}

/** prepareSigningKeys and its opening in one step. */
export async function openSigningKeys(options: OpenSigningKeysOptions): Promise<SigningKeys> {
  const open = await prepareSigningKeys(options.config, options.logger);
  return open(options);
}
