import { and, eq, inArray, isNotNull, isNull, lt, or } from 'drizzle-orm';
import type { Database, Tx } from '../db/client.js';
import { generateSplitToken, parseSplitToken, secretMatches } from '../crypto/split-token.js';
import { oneTimeTokens, type OneTimeTokenRow } from '../db/schema.js';
import { addSeconds } from '../time.js';
import { lockUser } from './accounts.js';

/** What an emailed token is for; a token never serves another purpose. */
export type OneTimeTokenPurpose = OneTimeTokenRow['purpose'];

/** Why a presented token was refused, kept for the audit log. */
export type OneTimeTokenFailure = 'malformed' | 'unknown' | 'bad_secret' | 'wrong_purpose' | 'used' | 'expired';

/** Outcome of checking a presented token; a refusal names the token's user when the token was found. */
export type OneTimeTokenCheck =
  | { ok: true; token: OneTimeTokenRow }
  | { ok: false; reason: OneTimeTokenFailure; userId?: string };

interface CheckOptions {
  purpose: OneTimeTokenPurpose;
  now: Date;
}

/**
 * Issues a token for an active user; any older unused token of the same purpose stops working.
 * Returns the string to mail (it is never stored, only the SHA-256 of its secret is), or null
 * when the account is missing or disabled.
 */
export async function issueOneTimeToken(
  tx: Tx,
  options: { userId: string; purpose: OneTimeTokenPurpose; now: Date; ttlSeconds: number },
): Promise<{ token: string; expiresAt: Date } | null> {
  const { userId, purpose, now } = options;
  // The user's row lock orders issuing against password changes and disabling (which revoke
  // outstanding tokens under the same lock), and two requests at once against each other, so
  // the later one really supersedes the earlier one's token.
  const user = await lockUser(tx, userId);
  if (!user?.active) return null;
  await revokeOneTimeTokens(tx, userId, [purpose]);
  // A split token, as refresh tokens are: a 128-bit id to find the row, a 256-bit secret.
  const token = generateSplitToken();
  const expiresAt = addSeconds(now, options.ttlSeconds);
  await tx.insert(oneTimeTokens).values({
    id: token.id,
    userId,
    purpose,
    secretHash: token.secretHash,
    createdAt: now,
    expiresAt,
  });
  return { token: token.token, expiresAt };
}

function check(row: OneTimeTokenRow | undefined, secret: string, { purpose, now }: CheckOptions): OneTimeTokenCheck {
  if (!row) return { ok: false, reason: 'unknown' };
  // The secret first: before it matches, the row tells the presenter nothing, not even its user.
  if (!secretMatches(secret, row.secretHash)) return { ok: false, reason: 'bad_secret' };
  if (row.purpose !== purpose) return { ok: false, reason: 'wrong_purpose', userId: row.userId };
  if (row.usedAt) return { ok: false, reason: 'used', userId: row.userId };
  if (row.expiresAt <= now) return { ok: false, reason: 'expired', userId: row.userId };
  return { ok: true, token: row };
}

/** Checks a presented token without spending it (to validate the rest of a request first). */
export async function peekOneTimeToken(db: Database, presented: string, options: CheckOptions): Promise<OneTimeTokenCheck> {
  const parts = parseSplitToken(presented);
  if (!parts) return { ok: false, reason: 'malformed' };
  const [row] = await db.select().from(oneTimeTokens).where(eq(oneTimeTokens.id, parts.id));
  return check(row, parts.secret, options);
}

/**
 * Checks and spends a token inside the caller's transaction. The row is locked first, so of
 * any number of concurrent uses exactly one sees it unused; the rest wait and find it spent.
 */
export async function consumeOneTimeToken(tx: Tx, presented: string, options: CheckOptions): Promise<OneTimeTokenCheck> {
  const parts = parseSplitToken(presented);
  if (!parts) return { ok: false, reason: 'malformed' };
  const [row] = await tx.select().from(oneTimeTokens).where(eq(oneTimeTokens.id, parts.id)).for('update');
  const result = check(row, parts.secret, options);
  if (!result.ok) return result;
  await tx.update(oneTimeTokens).set({ usedAt: options.now }).where(eq(oneTimeTokens.id, result.token.id));
  return { ok: true, token: { ...result.token, usedAt: options.now } };
}

/**
 * Deletes a user's unused tokens of these purposes, in the caller's transaction: a password
 * change or reset ends every reset link mailed before it, and disabling an account ends all.
 */
export async function revokeOneTimeTokens(tx: Tx, userId: string, purposes: OneTimeTokenPurpose[]): Promise<void> {
  await tx
    .delete(oneTimeTokens)
    .where(and(eq(oneTimeTokens.userId, userId), inArray(oneTimeTokens.purpose, purposes), isNull(oneTimeTokens.usedAt)));
}

/** Deletes tokens that are spent or expired; returns how many. */
export async function purgeOneTimeTokens(db: Database, now: Date): Promise<number> {
  const deleted = await db
    .delete(oneTimeTokens)
    .where(or(isNotNull(oneTimeTokens.usedAt), lt(oneTimeTokens.expiresAt, now)))
    .returning({ id: oneTimeTokens.id });
  return deleted.length;
}
