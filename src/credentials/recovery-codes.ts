import { randomBytes } from 'node:crypto';
import { and, eq, isNull } from 'drizzle-orm';
import { sha256Digest } from '../crypto/digest.js';
import type { Database, Tx } from '../db/client.js';
import { recoveryCodes } from '../db/schema.js';

/** How many codes a set holds. */
export const RECOVERY_CODE_COUNT = 10;
/** Crockford-style base32 without look-alikes (no I, L, O, U): what a person copies from paper. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** 16 characters of 5 bits: 80 bits, far beyond guessing, so a plain SHA-256 is a fit hash. */
const LENGTH = 16;

/** A new code, shown as four groups of four (`7K2M-...`). */
function generateCode(): string {
  const bytes = randomBytes(LENGTH);
  const chars = [...bytes].map((b) => ALPHABET[b & 31]!).join('');
  return chars.match(/.{4}/g)!.join('-');
}

/** What is hashed: the code without separators, upper-cased, look-alikes read as the digits they resemble. */
function normalize(code: string): string {
  return code.toUpperCase().replace(/[\s-]/g, '').replace(/[IL]/g, '1').replace(/O/g, '0');
}

const hashOf = (code: string) => sha256Digest(normalize(code), 'hex');

/** Whether a presented code has the shape of a recovery code. */
export const looksLikeRecoveryCode = (code: string) => normalize(code).length === LENGTH;

/** Replaces the user's recovery codes with a new set, in the caller's transaction; returns the codes (shown once). */
export async function replaceRecoveryCodes(tx: Tx, userId: string, now: Date): Promise<string[]> {
  await tx.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId));
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, generateCode);
  await tx.insert(recoveryCodes).values(codes.map((code) => ({ userId, codeHash: hashOf(code), createdAt: now })));
  return codes;
}

/** Deletes the user's recovery codes (no factor left for them to stand in for). */
export async function deleteRecoveryCodes(tx: Tx, userId: string): Promise<void> {
  await tx.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId));
}

/**
 * Spends one of the user's unused codes. A conditional write: of concurrent uses of one code,
 * exactly one finds it unused. False when the code is not one of theirs or was used.
 */
export async function spendRecoveryCode(db: Database | Tx, userId: string, code: string, now: Date): Promise<boolean> {
  if (!looksLikeRecoveryCode(code)) return false;
  const spent = await db
    .update(recoveryCodes)
    .set({ usedAt: now })
    .where(and(eq(recoveryCodes.userId, userId), eq(recoveryCodes.codeHash, hashOf(code)), isNull(recoveryCodes.usedAt)))
    .returning({ id: recoveryCodes.id });
  return spent.length === 1;
}

/** The rows of the user's codes not yet used. */
export const unusedCodesOf = (userId: string) => and(eq(recoveryCodes.userId, userId), isNull(recoveryCodes.usedAt));
