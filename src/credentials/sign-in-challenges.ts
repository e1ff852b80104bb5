import { and, eq, gt, isNull, lt, sql } from 'drizzle-orm';
import { sha256Digest } from '../crypto/digest.js';
import { generateSplitToken, parseSplitToken, secretMatches } from '../crypto/split-token.js';
import type { Database, Tx } from '../db/client.js';
import { signInChallenges } from '../db/schema.js';
import { addSeconds } from '../time.js';

/** How long a challenge lives: 5 minutes to find the phone. */
export const CHALLENGE_TTL_SECONDS = 300;
/** Codes a challenge takes before it dies, whatever RATE_LIMITS says. */
export const MAX_CHALLENGE_GUESSES = 5;

/** The binding of a challenge to the password step: the stored hash the password was checked against. */
export const passwordStepDigest = (passwordHash: string) => sha256Digest(passwordHash, 'hex');

/** The second factors a user can pass (PASSKEY comes with passkeys). */
export type SecondFactorMethod = 'TOTP' | 'RECOVERY_CODE' | 'PASSKEY';

/**
 * The answer of a right password (or a provider's sign-in) when the user has a second factor: no tokens, a challenge
 * that completeSignIn finishes with a code. Answered as a member of the result union (the
 * errors plugin carries it), though it is no failure.
 */
export class SecondFactorRequired extends Error {
  constructor(
    readonly challenge: string,
    readonly methods: SecondFactorMethod[],
    readonly expiresIn: number,
  ) {
    super('A second factor is required to finish signing in.');
    this.name = new.target.name;
  }
}

/**
 * The first step a challenge was issued after, and what binds it there: the stored hash the
 * password was checked against (`pwd`), or the provider identity that signed in (`fed`).
 */
export type FirstStep = { factor: 'pwd'; passwordHash: string } | { factor: 'fed'; identityId: string };

/** What a counted guess learns of its challenge's first step (the password hash only as its digest). */
export type FirstStepBinding = { factor: 'pwd'; passwordHashDigest: string } | { factor: 'fed'; identityId: string };

/** Issues a challenge for a user who just passed `firstStep`. */
export async function issueChallenge(
  db: Database | Tx,
  options: { userId: string; firstStep: FirstStep; now: Date },
): Promise<{ challenge: string; expiresAt: Date }> {
  const { firstStep } = options;
  const token = generateSplitToken();
  const expiresAt = addSeconds(options.now, CHALLENGE_TTL_SECONDS);
  await db.insert(signInChallenges).values({
    id: token.id,
    userId: options.userId,
    secretHash: token.secretHash,
    firstFactor: firstStep.factor,
    ...(firstStep.factor === 'pwd'
      ? { passwordHashDigest: passwordStepDigest(firstStep.passwordHash) }
      : { identityId: firstStep.identityId }),
    createdAt: options.now,
    expiresAt,
  });
  return { challenge: token.token, expiresAt };
}

/** The binding of a stored challenge row (the table's check constraint keeps it whole). */
function bindingOf(row: typeof signInChallenges.$inferSelect): FirstStepBinding {
  if (row.firstFactor === 'fed' && row.identityId) return { factor: 'fed', identityId: row.identityId };
  if (row.firstFactor === 'pwd' && row.passwordHashDigest) return { factor: 'pwd', passwordHashDigest: row.passwordHashDigest };
  throw new Error(`sign-in challenge without the binding of its first factor (${row.firstFactor})`);
}

/** Why a challenge was refused. */
export type ChallengeRefusal = 'malformed' | 'unknown' | 'expired' | 'spent' | 'exhausted';

/**
 * Counts one code against a live challenge BEFORE the code is checked (a conditional write: of
 * concurrent guesses, at most MAX_CHALLENGE_GUESSES are ever counted, so checked). Returns the
 * challenge's user and first-step binding, or why it is dead.
 */
export async function reserveGuess(
  db: Database,
  presented: string,
  now: Date,
): Promise<
  { ok: true; id: string; userId: string; binding: FirstStepBinding; issuedAt: Date } | { ok: false; reason: ChallengeRefusal; userId?: string }
> {
  const parts = parseSplitToken(presented);
  if (!parts) return { ok: false, reason: 'malformed' };
  const [row] = await db.select().from(signInChallenges).where(eq(signInChallenges.id, parts.id));
  if (!row || !secretMatches(parts.secret, row.secretHash)) return { ok: false, reason: 'unknown' };
  const [counted] = await db
    .update(signInChallenges)
    .set({ guesses: sql`${signInChallenges.guesses} + 1` })
    .where(
      and(
        eq(signInChallenges.id, row.id),
        isNull(signInChallenges.spentAt),
        gt(signInChallenges.expiresAt, now),
        lt(signInChallenges.guesses, MAX_CHALLENGE_GUESSES),
      ),
    )
    .returning();
  if (counted) return { ok: true, id: row.id, userId: row.userId, binding: bindingOf(row), issuedAt: row.createdAt };
  const reason = row.spentAt ? 'spent' : row.expiresAt <= now ? 'expired' : 'exhausted';
  return { ok: false, reason, userId: row.userId };
}

/**
 * Gives back a guess reserveGuess counted for a code that could not be checked at all (the
 * server cannot open the user's TOTP secret): no code of that kind can pass, so nothing is
 * learned by it, and the challenge stays alive for a recovery code.
 */
export async function returnGuess(db: Database, id: string): Promise<void> {
  await db
    .update(signInChallenges)
    .set({ guesses: sql`greatest(${signInChallenges.guesses} - 1, 0)` })
    .where(and(eq(signInChallenges.id, id), isNull(signInChallenges.spentAt)));
}

/** The live challenge's id and user (the secret checked, nothing counted), or null. */
export async function liveChallenge(db: Database, presented: string, now: Date): Promise<{ id: string; userId: string } | null> {
  const parts = parseSplitToken(presented);
  if (!parts) return null;
  const [row] = await db.select().from(signInChallenges).where(eq(signInChallenges.id, parts.id));
  if (!row || !secretMatches(parts.secret, row.secretHash) || row.spentAt || row.expiresAt <= now) return null;
  return row.guesses < MAX_CHALLENGE_GUESSES ? { id: row.id, userId: row.userId } : null;
}

/** Spends a challenge, in the caller's transaction; false when it was spent (or died) meanwhile. */
export async function spendChallenge(tx: Tx, id: string, now: Date): Promise<boolean> {
  const spent = await tx
    .update(signInChallenges)
    .set({ spentAt: now })
    .where(and(eq(signInChallenges.id, id), isNull(signInChallenges.spentAt), gt(signInChallenges.expiresAt, now)))
    .returning({ id: signInChallenges.id });
  return spent.length === 1;
}

/** Deletes challenges past their expiry. */
export async function purgeExpiredChallenges(db: Database, now: Date): Promise<number> {
  const deleted = await db.delete(signInChallenges).where(lt(signInChallenges.expiresAt, now)).returning({ id: signInChallenges.id });
  return deleted.length;
}
