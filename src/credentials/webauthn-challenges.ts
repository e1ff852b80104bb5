import { eq, lte } from 'drizzle-orm';
import { hashSecret } from '../crypto/split-token.js';
import type { Database, Tx } from '../db/client.js';
import { webauthnChallenges } from '../db/schema.js';
import { addSeconds } from '../time.js';

/** How long a WebAuthn ceremony may take, from its options to its answer (the options' `timeout` too). */
export const WEBAUTHN_CHALLENGE_TTL_SECONDS = 300;

/** What a WebAuthn challenge was issued for. */
export type WebauthnPurpose = (typeof webauthnChallenges.$inferSelect)['purpose'];

/** The binding a challenge carries: a user, a sign-in's second step, or nothing (a discoverable sign-in). */
export interface WebauthnBinding {
  purpose: WebauthnPurpose;
  userId: string | null;
  signInChallengeId?: string | null;
}

/** Stores a challenge handed out in WebAuthn options, as SHA-256 of it. */
export async function saveWebauthnChallenge(db: Database | Tx, challenge: string, binding: WebauthnBinding, now: Date): Promise<void> {
  await db.insert(webauthnChallenges).values({
    challengeHash: hashSecret(challenge),
    purpose: binding.purpose,
    userId: binding.userId,
    signInChallengeId: binding.signInChallengeId ?? null,
    createdAt: now,
    expiresAt: addSeconds(now, WEBAUTHN_CHALLENGE_TTL_SECONDS),
  });
}

/**
 * Takes a challenge (DELETE … RETURNING: of two answers racing with one challenge, one gets it)
 * and returns its binding; null when unknown, spent, expired or issued for another purpose. A
 * challenge presented for the wrong purpose is spent all the same.
 */
export async function takeWebauthnChallenge(
  db: Database | Tx,
  challenge: string,
  purpose: WebauthnPurpose,
  now: Date,
): Promise<WebauthnBinding | null> {
  const [row] = await db.delete(webauthnChallenges).where(eq(webauthnChallenges.challengeHash, hashSecret(challenge))).returning();
  if (!row || row.expiresAt <= now || row.purpose !== purpose) return null;
  return { purpose: row.purpose, userId: row.userId, signInChallengeId: row.signInChallengeId };
}

/** Deletes challenges never answered; returns how many. */
export async function purgeWebauthnChallenges(db: Database, now: Date): Promise<number> {
  const rows = await db
    .delete(webauthnChallenges)
    .where(lte(webauthnChallenges.expiresAt, now))
    .returning({ challengeHash: webauthnChallenges.challengeHash });
  return rows.length;
}
