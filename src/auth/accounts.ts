import { eq } from 'drizzle-orm';
import type { Database, Tx } from '../db/client.js';
import { userRoles, users, type UserRow } from '../db/schema.js';
import { EmailTakenError } from '../errors.js';

/** The role every new account gets. */
export const DEFAULT_ROLE = 'user';

type Executor = Database | Tx;

/** Finds a user by normalized email. */
export async function findUserByEmail(db: Executor, email: string): Promise<UserRow | null> {
  const [row] = await db.select().from(users).where(eq(users.email, email));
  return row ?? null;
}

/** Finds a user by id. */
export async function findUserById(db: Executor, id: string): Promise<UserRow | null> {
  const [row] = await db.select().from(users).where(eq(users.id, id));
  return row ?? null;
}

/**
 * Reads a user and locks the row until the transaction ends. Every write that depends on what
 * the row said (its password hash, whether it is active, its cut-off) reads it this way, after
 * any slow work (argon2), so a concurrent change is either seen or waits.
 */
export async function lockUser(tx: Tx, id: string): Promise<UserRow | null> {
  const [row] = await tx.select().from(users).where(eq(users.id, id)).for('update');
  return row ?? null;
}

function isUniqueViolation(err: unknown, constraint: string): boolean {
  // drizzle wraps driver errors; the PostgreSQL code and constraint are on `cause`.
  const cause = (err as { cause?: { code?: string; constraint?: string; constraint_name?: string } }).cause;
  return cause?.code === '23505' && (cause.constraint ?? cause.constraint_name) === constraint;
}

/**
 * Inserts a user with the default role. The unique index on email decides races: of two
 * concurrent registrations of one address, the second gets EmailTakenError.
 */
export async function insertUser(
  tx: Tx,
  values: { email: string; passwordHash: string; name: string | null; now: Date },
): Promise<UserRow> {
  let row: UserRow | undefined;
  try {
    // A savepoint, so that a duplicate does not poison the surrounding transaction.
    [row] = await tx.transaction((sp) =>
      sp
        .insert(users)
        .values({ email: values.email, passwordHash: values.passwordHash, name: values.name, createdAt: values.now })
        .returning(),
    );
  } catch (err) {
    if (isUniqueViolation(err, 'users_email_unique')) throw new EmailTakenError();
    throw err;
  }
  await tx.insert(userRoles).values({ userId: row!.id, role: DEFAULT_ROLE, createdAt: values.now });
  return row!;
}
