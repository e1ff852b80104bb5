import { createPrivateKey, createPublicKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { importPKCS8, importSPKI, SignJWT, jwtVerify, type CryptoKey } from 'jose';
import { ConfigError, type Config, type JwtAlgorithm } from '../config.js';
import type { Logger } from '../logger.js';

/** Key material imported once at start-up. */
export interface SigningKeys {
  algorithm: JwtAlgorithm;
  signingKey: CryptoKey;
  verificationKey: CryptoKey;
  /** HMAC key that derives a refresh token's successor from it (see refresh-tokens.ts). */
  successorKey: Buffer;
}

const MIN_SECRET_BYTES: Partial<Record<JwtAlgorithm, number>> = { HS256: 32, HS384: 48, HS512: 64 };
const SECRET_FILE = 'jwt-secret';

function deriveSuccessorKey(material: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', material, Buffer.alloc(0), 'authgraph refresh-token successor', 32));
}

/** PEM keys passed through environment variables often carry literal "\n" sequences. */
function pem(value: string): string {
  return value.includes('\\n') ? value.replace(/\\n/g, '\n') : value;
}

function readSecretFile(file: string): string | null {
  try {
    const secret = readFileSync(file, 'utf8').trim();
    if (secret === '') throw new ConfigError(`${file} is empty: delete it to have a new secret generated.`);
    return secret;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function readOrCreateDevSecret(dataDir: string, logger: Logger): string {
  const file = path.join(dataDir, SECRET_FILE);
  const existing = readSecretFile(file);
  if (existing) return existing;
  mkdirSync(dataDir, { recursive: true });
  try {
    writeFileSync(file, randomBytes(64).toString('base64url'), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another process (the CLI, a second server) created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return readSecretFile(file) ?? readOrCreateDevSecret(dataDir, logger);
  }
  logger.warn(
    { file },
    'JWT_SECRET is not set: generated a development secret and stored it in DATA_DIR. ' +
      'Set JWT_SECRET in production (the server refuses to start there without it).',
  );
  return readSecretFile(file)!;
}

async function symmetricKeys(config: Config, logger: Logger): Promise<SigningKeys> {
  const { algorithm } = config.jwt;
  let secret = config.jwt.secret;
  if (!secret) {
    if (config.production) {
      throw new ConfigError('JWT_SECRET is required when NODE_ENV=production.');
    }
    secret = readOrCreateDevSecret(config.dataDir, logger);
  }
  const bytes = Buffer.from(secret, 'utf8');
  const minimum = MIN_SECRET_BYTES[algorithm] ?? 32;
  if (bytes.length < minimum) {
    throw new ConfigError(
      `JWT_SECRET must be at least ${minimum} bytes for ${algorithm} (it has ${bytes.length}).`,
    );
  }
  const key = await crypto.subtle.importKey(
    'raw',
    bytes,
    { name: 'HMAC', hash: `SHA-${algorithm.slice(2)}` },
    false,
    ['sign', 'verify'],
  );
  return { algorithm, signingKey: key, verificationKey: key, successorKey: deriveSuccessorKey(bytes) };
}

function checkKeyFitsAlgorithm(algorithm: JwtAlgorithm, key: KeyObject): void {
  const details = key.asymmetricKeyDetails;
  if (algorithm.startsWith('RS') && (details?.modulusLength ?? 0) < 2048) {
    throw new ConfigError(`JWT_PRIVATE_KEY must be an RSA key of at least 2048 bits for ${algorithm}.`);
  }
}

async function asymmetricKeys(config: Config): Promise<SigningKeys> {
  const { algorithm, privateKey, publicKey } = config.jwt;
  if (!privateKey) {
    throw new ConfigError(`JWT_PRIVATE_KEY (PKCS#8 PEM) is required for JWT_ALGORITHM=${algorithm}.`);
  }
  let privateObject: KeyObject;
  try {
    privateObject = createPrivateKey(pem(privateKey));
  } catch {
    throw new ConfigError('JWT_PRIVATE_KEY is not a readable PEM private key.');
  }
  checkKeyFitsAlgorithm(algorithm, privateObject);
  const publicPem = publicKey
    ? pem(publicKey)
    : createPublicKey(privateObject).export({ type: 'spki', format: 'pem' }).toString();
  const pkcs8 = privateObject.export({ type: 'pkcs8', format: 'pem' }).toString();
  let keys: SigningKeys;
  try {
    keys = {
      algorithm,
      signingKey: await importPKCS8(pkcs8, algorithm),
      verificationKey: await importSPKI(publicPem, algorithm),
      successorKey: deriveSuccessorKey(privateObject.export({ type: 'pkcs8', format: 'der' })),
    };
  } catch (err) {
    throw new ConfigError(
      `JWT_PRIVATE_KEY / JWT_PUBLIC_KEY do not fit ${algorithm}: ${(err as Error).message}`,
    );
  }
  // A public key that does not match the private one would reject every token: fail now instead.
  const probe = await new SignJWT({}).setProtectedHeader({ alg: algorithm }).sign(keys.signingKey);
  await jwtVerify(probe, keys.verificationKey).catch(() => {
    throw new ConfigError('JWT_PUBLIC_KEY does not match JWT_PRIVATE_KEY.');
  });
  return keys;
}

/** Resolves and imports the access-token keys from the configuration, once, at start-up. */
export function loadSigningKeys(config: Config, logger: Logger): Promise<SigningKeys> {
  return config.jwt.algorithm.startsWith('HS') ? symmetricKeys(config, logger) : asymmetricKeys(config);
}
