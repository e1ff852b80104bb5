import { and, eq, getTableColumns, sql } from 'drizzle-orm';
import type { Database, Tx } from '../db/client.js';
import { userRoles, users, type UserRow } from '../db/schema.js';
import { EmailTakenError } from '../errors.js';

/**
 * The owner of the users table: every read and write of an account row goes through here, so
 * the rules of each column (who may change it, under which lock) live in one place.
 */

/**
 * An account as the API shows it: the user row without its password hash, which never leaves
 * the modules that check passwords (`passwordHash?: never` makes handing over a full row a type error).
 */
export type Account = Omit<UserRow, 'passwordHash'> & { passwordHash?: never };

const { passwordHash: _hashColumn, ...accountColumns } = getTableColumns(users);

/** The columns of an Account, for queries that hand users to the API. */
export const ACCOUNT_COLUMNS = accountColumns;

/** The row as an Account (the hash dropped). */
export function toAccount(row: UserRow): Account {
  const { passwordHash: _hash, ...account } = row;
  return account;
}

/** Finds an account by id, without its password hash. */
export async function findAccountById(db: Executor, id: string): Promise<Account | null> {
  const [row] = await db.select(ACCOUNT_COLUMNS).from(users).where(eq(users.id, id));
  return row ?? null;
}

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
  values: { email: string; passwordHash: string | null; name: string | null; now: Date; emailVerified?: boolean },
): Promise<UserRow> {
  let row: UserRow | undefined;
  try {
    // A savepoint, so that a duplicate does not poison the surrounding transaction.
    [row] = await tx.transaction((sp) =>
      sp
        .insert(users)
        .values({
          email: values.email,
          passwordHash: values.passwordHash,
          name: values.name,
          emailVerified: values.emailVerified ?? false,
          createdAt: values.now,
        })
        .returning(),
    );
  } catch (err) {
    if (isUniqueViolation(err, 'users_email_unique')) throw new EmailTakenError();
    throw err;
  }
  await tx.insert(userRoles).values({ userId: row!.id, role: DEFAULT_ROLE, createdAt: values.now });
  return row!;
}

async function updateUser(tx: Tx, id: string, values: Partial<typeof users.$inferInsert>): Promise<UserRow> {
  const [row] = await tx.update(users).set(values).where(eq(users.id, id)).returning();
  return row!;
}

/**
 * Says that what this transaction writes to password_hash is a re-hash of the same password at
 * new parameters, so the account-change trigger does not announce a password change (migration 0019).
 */
const markRehash = (tx: Tx) => tx.execute(sql`select set_config('authgraph.rehash', 'on', true)`);

/** Records a sign-in; `passwordHash` replaces the stored hash (a re-hash of the same password at new parameters). */
export async function recordSignIn(tx: Tx, id: string, options: { now: Date; passwordHash?: string | null }): Promise<UserRow> {
  const { now, passwordHash } = options;
  if (!passwordHash) return updateUser(tx, id, { lastLoginAt: now });
  await markRehash(tx);
  return updateUser(tx, id, { lastLoginAt: now, passwordHash });
}

/**
 * Replaces the stored hash by a re-hash of the same password, if it still is `checked` (the hash
 * the password was verified against: a conditional write, so a password changed meanwhile stays).
 * True when replaced.
 */
export async function storeRehash(tx: Tx, id: string, checked: string, rehashed: string): Promise<boolean> {
  await markRehash(tx);
  const rows = await tx
    .update(users)
    .set({ passwordHash: rehashed })
    .where(and(eq(users.id, id), eq(users.passwordHash, checked)))
    .returning({ id: users.id });
  return rows.length === 1;
}

/**
 * Stores a new password hash (the caller has locked the row and checked what it must).
 * `viaEmail`: set through a mailed link, which also proves the address.
 */
export function setPasswordHash(tx: Tx, id: string, passwordHash: string, options: { now: Date; viaEmail?: boolean }): Promise<UserRow> {
  return updateUser(tx, id, options.viaEmail ? { passwordHash, emailVerified: true, lastLoginAt: options.now } : { passwordHash });
}

/** Marks an active account's address verified; null when the account is missing or disabled. */
export async function markEmailVerified(tx: Tx, id: string): Promise<UserRow | null> {
  const [row] = await tx
    .update(users)
    .set({ emailVerified: true })
    .where(and(eq(users.id, id), eq(users.active, true)))
    .returning();
  return row ?? null;
}

/** Enables or disables an account. */
export function setActive(tx: Tx, id: string, active: boolean): Promise<UserRow> {
  return updateUser(tx, id, { active });
}

/**
 * Moves the user's cut-off to `at`: access tokens issued before it are refused. It only ever
 * moves forward, so two sign-outs committing out of order cannot bring older tokens back.
 */
export async function moveCutoff(tx: Tx, id: string, at: Date): Promise<void> {
  const instant = sql`${at.toISOString()}::timestamptz`;
  await tx
    .update(users)
    .set({ tokensValidAfter: sql`greatest(coalesce(${users.tokensValidAfter}, ${instant}), ${instant})` })
    .where(eq(users.id, id));
}
