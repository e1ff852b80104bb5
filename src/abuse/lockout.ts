import { and, eq, isNull, lte, or, sql } from 'drizzle-orm';
import type { Clock } from '../clock.js';
import { sha256Digest } from '../crypto/digest.js';
import type { Database } from '../db/client.js';
import { loginLockouts } from '../db/schema.js';
import { retryAfterSeconds } from '../time.js';
import type { Refusal } from './rate-limiter.js';
import {
  admitAttempt,
  blockedUntil,
  EMPTY_LOCKOUT,
  quietSpellMs,
  withdrawAttempt,
  type LockoutPolicy,
  type LockoutState,
} from './lockout-rule.js';

export type { LockoutPolicy } from './lockout-rule.js';

/** A sign-in attempt that may go ahead, counted as a failure until it proves otherwise. */
export interface Reservation {
  /** The password was wrong: the failure stays counted. Returns the wait it earned in seconds, when it locked the email, else null. */
  failed(): Promise<number | null>;
  /** The password was right: clears the failures and the escalation. */
  succeeded(): Promise<void>;
  /** The attempt ended without a password verdict (e.g. overload): takes it back. */
  release(): Promise<void>;
}

export interface Lockout {
  /**
   * Counts an attempt for an email BEFORE its password is checked, in a transaction holding
   * the email's row, so that concurrent attempts can never get more password checks than the
   * rule allows. Refuses instead while the email is blocked.
   */
  reserve(email: string): Promise<Reservation | Refusal>;
  /** Deletes entries whose lock has ended and whose streak is forgotten. */
  purgeStale(): Promise<number>;
}

type Row = typeof loginLockouts.$inferSelect;
type Tx = Parameters<Parameters<Database['transaction']>[0]>[0];

/** An email's key in login_lockouts: stored hashed, not readable from the table. */
export const lockoutKey = (email: string) => sha256Digest(email, 'base64url');

const stateOf = (row: Row): LockoutState => ({
  failureTimes: row.failureTimes.map((t) => t.getTime()),
  level: row.level,
  lockedUntil: row.lockedUntil?.getTime() ?? null,
});

const columnsOf = (state: LockoutState, now: Date) => ({
  failureTimes: state.failureTimes.map((t) => new Date(t)),
  level: state.level,
  lockedUntil: state.lockedUntil === null ? null : new Date(state.lockedUntil),
  updatedAt: now,
});

/**
 * Temporary, escalating account lockout keyed by normalized email, whether or not an account
 * has it, so that a locked-out unknown email looks exactly like a locked-out real one. The
 * rule lives in lockout-rule.ts; this module keeps its state in PostgreSQL, shared by every
 * server instance on the database.
 */
export function createLockout(deps: { db: Database; clock: Clock; policy: LockoutPolicy }): Lockout {
  const { db, clock, policy } = deps;

  /** Runs `change` on the email's row (created empty if missing) under a row lock, in one transaction. */
  const withRow = <T>(emailHash: string, change: (row: Row, tx: Tx) => Promise<T>): Promise<T> =>
    db.transaction(async (tx) => {
      // One statement creates or locks the row: a separate SELECT ... FOR UPDATE could find it
      // deleted (by a success or the purge) in between.
      const [row] = await tx
        .insert(loginLockouts)
        .values({ emailHash, ...columnsOf(EMPTY_LOCKOUT, clock.now()) })
        .onConflictDoUpdate({ target: loginLockouts.emailHash, set: { emailHash: sql`excluded.email_hash` } })
        .returning();
      return change(row!, tx);
    });

  const save = (tx: Tx, emailHash: string, state: LockoutState, now: Date) =>
    tx.update(loginLockouts).set(columnsOf(state, now)).where(eq(loginLockouts.emailHash, emailHash));

  return {
    reserve(email) {
      const emailHash = lockoutKey(email);
      return withRow<Reservation | Refusal>(emailHash, async (row, tx) => {
        const now = clock.now();
        const at = now.getTime();
        const before = stateOf(row);
        const admission = admitAttempt(before, at, policy);
        if (admission === null) {
          const until = blockedUntil(before, at, policy)!;
          const first = row.refusalRecordedFor?.getTime() !== until;
          if (first) {
            await tx
              .update(loginLockouts)
              .set({ refusalRecordedFor: new Date(until) })
              .where(eq(loginLockouts.emailHash, emailHash));
          }
          return { retryAfter: retryAfterSeconds(new Date(until), now), first };
        }
        await save(tx, emailHash, admission.next, now);
        return {
          // The lock, if this attempt set one, is the wait the email now has (the cap may make it longer).
          failed: async () =>
            admission.lockedUntil === null ? null : retryAfterSeconds(new Date(blockedUntil(admission.next, at, policy)!), now),
          succeeded: async () => {
            await db.delete(loginLockouts).where(eq(loginLockouts.emailHash, emailHash));
          },
          release: async () => {
            await withRow(emailHash, (current, tx2) =>
              save(tx2, emailHash, withdrawAttempt(stateOf(current), { at, admission, before }), clock.now()),
            );
          },
        };
      });
    },

    async purgeStale() {
      const now = clock.now();
      const quietSince = new Date(now.getTime() - quietSpellMs(policy));
      // The newest failure is the last element (arrays are 1-based); an empty log is quiet.
      const newestFailure = sql`${loginLockouts.failureTimes}[cardinality(${loginLockouts.failureTimes})]`;
      const deleted = await db
        .delete(loginLockouts)
        .where(
          and(
            or(sql`cardinality(${loginLockouts.failureTimes}) = 0`, sql`${newestFailure} <= ${quietSince.toISOString()}::timestamptz`),
            or(isNull(loginLockouts.lockedUntil), lte(loginLockouts.lockedUntil, now)),
          ),
        )
        .returning({ emailHash: loginLockouts.emailHash });
      return deleted.length;
    },
  };
}
