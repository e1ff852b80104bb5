import { eq, lte } from 'drizzle-orm';
import { hashSecret } from '../crypto/split-token.js';
import type { Database, Tx } from '../db/client.js';
import { socialSignInStates } from '../db/schema.js';
import { addSeconds } from '../time.js';

/** What a started social sign-in or link keeps until the provider sends the user back. */
export interface PendingSocialSignIn {
  provider: string;
  codeVerifier: string;
  nonce: string;
  redirectUri: string;
  /** The signed-in user who started a link; null for a sign-in. */
  userId: string | null;
}

/** Stores a started sign-in under SHA-256 of its state (256 random bits: plain SHA-256 suffices, and the state itself is never kept). */
export async function saveSocialState(
  db: Database | Tx,
  state: string,
  pending: PendingSocialSignIn,
  options: { now: Date; ttlSeconds: number },
): Promise<void> {
  await db.insert(socialSignInStates).values({
    stateHash: hashSecret(state),
    ...pending,
    createdAt: options.now,
    expiresAt: addSeconds(options.now, options.ttlSeconds),
  });
}

/**
 * Takes a state's row and deletes it in one statement (DELETE … RETURNING), so a state serves
 * one completion at most: of two racing with it, one gets the row and the other nothing. A
 * state found expired is spent all the same. Null when the state is unknown, spent or expired.
 */
export async function consumeSocialState(db: Database | Tx, state: string, now: Date): Promise<PendingSocialSignIn | null> {
  const [row] = await db.delete(socialSignInStates).where(eq(socialSignInStates.stateHash, hashSecret(state))).returning();
  if (!row || row.expiresAt <= now) return null;
  return { provider: row.provider, codeVerifier: row.codeVerifier, nonce: row.nonce, redirectUri: row.redirectUri, userId: row.userId };
}

/** Deletes the states of sign-ins never completed; returns how many. */
export async function purgeSocialStates(db: Database, now: Date): Promise<number> {
  const rows = await db.delete(socialSignInStates).where(lte(socialSignInStates.expiresAt, now)).returning({ stateHash: socialSignInStates.stateHash });
  return rows.length;
}
