import { randomBytes, timingSafeEqual } from 'node:crypto';
import { sha256Digest } from './digest.js';

/**
 * A bearer token in two parts, `<id>.<secret>`: the id finds the row, the secret proves the
 * holder and is never stored. Refresh tokens and mailed one-time links both have this form.
 */
export interface SplitToken {
  id: string;
  secret: string;
  /** The string handed to the client. */
  token: string;
  /** What is stored: SHA-256 of the secret, hex. */
  secretHash: string;
}

// 128-bit id to look the row up, 256-bit secret that is never stored: a database leak yields
// hashes of high-entropy secrets, which cannot be reversed or brute-forced.
const ID_BYTES = 16;
const SECRET_BYTES = 32;
const SHAPE = /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;

/** SHA-256 of a secret, hex; plain SHA-256 suffices for 256 random bits. */
export function hashSecret(secret: string): string {
  return sha256Digest(secret, 'hex');
}

/**
 * A token made of the first 16 bytes of `idBytes` and the first 32 of `secretBytes`, for a
 * token derived rather than drawn at random (a refresh token's successor): the bytes must be
 * as unpredictable as random ones, and there must be enough of them.
 */
export function splitTokenFromBytes(idBytes: Buffer, secretBytes: Buffer): SplitToken {
  if (idBytes.length < ID_BYTES || secretBytes.length < SECRET_BYTES) {
    throw new RangeError(`A split token needs ${ID_BYTES} id bytes and ${SECRET_BYTES} secret bytes.`);
  }
  const id = idBytes.subarray(0, ID_BYTES).toString('base64url');
  const secret = secretBytes.subarray(0, SECRET_BYTES).toString('base64url');
  return { id, secret, token: `${id}.${secret}`, secretHash: hashSecret(secret) };
}

/** A fresh random token. */
export function generateSplitToken(): SplitToken {
  return splitTokenFromBytes(randomBytes(ID_BYTES), randomBytes(SECRET_BYTES));
}

/** Splits a presented token, or returns null when it is not of our shape. */
export function parseSplitToken(token: string): { id: string; secret: string } | null {
  const match = SHAPE.exec(token);
  return match ? { id: match[1]!, secret: match[2]! } : null;
}

/** Compares a presented secret with a stored hash in constant time (no timing oracle on the hash). */
export function secretMatches(secret: string, storedHash: string): boolean {
  const presented = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(storedHash, 'hex');
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}
