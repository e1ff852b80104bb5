import { and, asc, eq, lt } from 'drizzle-orm';
import type { Database, Tx } from '../db/client.js';
import { passkeys, type PasskeyRow } from '../db/schema.js';

export type { PasskeyRow };

/** A verified new credential, as it is stored. */
export type NewPasskey = Pick<PasskeyRow, 'userId' | 'credentialId' | 'publicKey' | 'counter' | 'transports' | 'backupEligible' | 'backedUp' | 'name' | 'createdAt'>;

/** The user's passkeys, oldest first. */
export function passkeysOf(db: Database | Tx, userId: string): Promise<PasskeyRow[]> {
  return db.select().from(passkeys).where(eq(passkeys.userId, userId)).orderBy(asc(passkeys.createdAt), asc(passkeys.id));
}

/** The passkey of a credential id (base64url), or null. */
export async function findPasskey(db: Database | Tx, credentialId: string): Promise<PasskeyRow | null> {
  const [row] = await db.select().from(passkeys).where(eq(passkeys.credentialId, credentialId));
  return row ?? null;
}

/** Stores a new passkey; null when its credential id is registered already (to anyone). */
export async function insertPasskey(tx: Tx, passkey: NewPasskey): Promise<PasskeyRow | null> {
  const [row] = await tx.insert(passkeys).values(passkey).onConflictDoNothing({ target: passkeys.credentialId }).returning();
  return row ?? null;
}

/**
 * Records a verified assertion: the new counter, the backup state, the time. A conditional
 * write: the counter only moves forward (an authenticator without a counter reports 0 each
 * time, and 0 after 0 is accepted), so of two assertions racing with one counter value at most
 * one is recorded. False when the counter did not move forward, or the passkey is gone.
 */
export async function recordPasskeyUse(
  db: Database | Tx,
  id: string,
  use: { counter: number; backedUp: boolean; now: Date },
): Promise<boolean> {
  const forward = use.counter === 0 ? eq(passkeys.counter, 0) : lt(passkeys.counter, use.counter);
  const rows = await db
    .update(passkeys)
    .set({ counter: use.counter, backedUp: use.backedUp, lastUsedAt: use.now })
    .where(and(eq(passkeys.id, id), forward))
    .returning({ id: passkeys.id });
  return rows.length === 1;
}

/** Removes one of the user's passkeys; false when the user has no passkey of that id. */
export async function deletePasskey(tx: Tx, userId: string, id: string): Promise<boolean> {
  const rows = await tx.delete(passkeys).where(and(eq(passkeys.userId, userId), eq(passkeys.id, id))).returning({ id: passkeys.id });
  return rows.length === 1;
}
