import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** A refresh token as the client holds it: `<id>.<secret>`. */
export interface RefreshToken {
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
  return createHash('sha256').update(secret).digest('hex');
}

function assemble(id: string, secret: string): RefreshToken {
  return { id, secret, token: `${id}.${secret}`, secretHash: hashSecret(secret) };
}

/** A fresh random refresh token. */
export function generateRefreshToken(): RefreshToken {
  return assemble(randomBytes(ID_BYTES).toString('base64url'), randomBytes(SECRET_BYTES).toString('base64url'));
}

/** Splits a presented token, or returns null when it is not of our shape. */
export function parseRefreshToken(token: string): { id: string; secret: string } | null {
  const match = SHAPE.exec(token);
  return match ? { id: match[1]!, secret: match[2]! } : null;
}

/** Compares a presented secret with a stored hash in constant time (no timing oracle on the hash). */
export function secretMatches(secret: string, storedHash: string): boolean {
  const presented = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(storedHash, 'hex');
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}

/**
 * The successor of a token is derived from it with a server-side HMAC key, so a retry of the
 * same refresh can be answered with the same successor without storing successors in clear.
 * It depends on the parent's secret, which only the client holds: a stolen database cannot
 * compute it, and without the key neither can a thief of an old token.
 */
export function deriveSuccessor(key: Buffer, parent: { id: string; secret: string }): RefreshToken {
  const material = (label: string) =>
    createHmac('sha256', key).update(`${label}\0${parent.id}\0${parent.secret}`).digest();
  return assemble(
    material('id').subarray(0, ID_BYTES).toString('base64url'),
    material('secret').subarray(0, SECRET_BYTES).toString('base64url'),
  );
}
