import { and, asc, count, eq } from 'drizzle-orm';
import type { Database, Tx } from '../db/client.js';
import { identities, type IdentityRow } from '../db/schema.js';

type Executor = Database | Tx;

/** The identity a provider's subject is linked as, if any. */
export async function findIdentity(db: Executor, provider: string, subject: string): Promise<IdentityRow | null> {
  const [row] = await db
    .select()
    .from(identities)
    .where(and(eq(identities.provider, provider), eq(identities.subject, subject)));
  return row ?? null;
}

/** A user's linked identities, oldest first. */
export function listIdentities(db: Executor, userId: string): Promise<IdentityRow[]> {
  return db.select().from(identities).where(eq(identities.userId, userId)).orderBy(asc(identities.createdAt), asc(identities.id));
}

/** How many identities a user has. */
export async function countIdentities(tx: Tx, userId: string): Promise<number> {
  const [row] = await tx.select({ n: count() }).from(identities).where(eq(identities.userId, userId));
  return row?.n ?? 0;
}

/**
 * Links a provider's subject to a user. The unique index on (provider, subject) decides races:
 * the loser's transaction fails with its violation (the caller retries and then finds the row).
 */
export async function insertIdentity(
  tx: Tx,
  values: { userId: string; provider: string; subject: string; email: string | null; now: Date },
): Promise<IdentityRow> {
  const { now, ...rest } = values;
  const [row] = await tx
    .insert(identities)
    .values({ ...rest, createdAt: now })
    .returning();
  return row!;
}

/** Deletes one of a user's identities; null when the user has none with this id. */
export async function deleteIdentity(tx: Tx, userId: string, id: string): Promise<IdentityRow | null> {
  const [row] = await tx
    .delete(identities)
    .where(and(eq(identities.id, id), eq(identities.userId, userId)))
    .returning();
  return row ?? null;
}

/** Deletes every identity of a user; the rows deleted. */
export function deleteIdentitiesOf(tx: Tx, userId: string): Promise<IdentityRow[]> {
  return tx.delete(identities).where(eq(identities.userId, userId)).returning();
}
