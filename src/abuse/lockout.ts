import { and, eq, isNull, lte, or, sql } from 'drizzle-orm';
import type { Clock } from '../clock.js';
import { sha256Digest } from '../crypto/digest.js';
import type { Database, Tx } from '../db/client.js';
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
  /** The password was wrong: the failure (and a lock it set) stays as reserve() stored it. */
  failed(): Promise<void>;
  /** The password was right: clears the failures and the escalation (and a lock this attempt set). */
  succeeded(): Promise<void>;
  /** The attempt ended without a password verdict (e.g. overload): takes it back. */
  release(): Promise<void>;
}

/** Why a lock set by an attempt was lifted before it ran out. */
export type LiftReason = 'signed_in' | 'attempt_withdrawn';

/**
 * Told of the locks an attempt sets and lifts, inside the transaction that sets or lifts
 * them, so what it writes (the audit event) commits with the lock or not at all.
 */
export interface LockWitness {
  /** This attempt locked the email: it is blocked for `seconds` from now. */
  locked(tx: Tx, seconds: number): Promise<void>;
  /** The lock this attempt set was lifted: the password was right, or the attempt was taken back (no verdict, or refused after a right password). */
  lifted(tx: Tx, reason: LiftReason): Promise<void>;
}

export interface Lockout {
  /**
   * Counts an attempt for an email BEFORE its password is checked, in a transaction holding
   * the email's row, so that concurrent attempts can never get more password checks than the
   * rule allows. Refuses instead while the email is blocked. The attempt that reaches the
   * threshold locks the email at once (a concurrent guess is refused while its password is
   * checked); `witness` hears of that lock in this transaction, and of its lifting in the one
   * that lifts it.
   */
  reserve(email: string, witness: LockWitness): Promise<Reservation | Refusal>;
  /** Deletes entries whose lock has ended and whose streak is forgotten. */
  purgeStale(): Promise<number>;
}

type Row = typeof loginLockouts.$inferSelect;

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
    reserve(email, witness) {
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
        const setLock = admission.lockedUntil !== null;
        // The wait the email now has (the cap may make it longer than the lock itself).
        if (setLock) await witness.locked(tx, retryAfterSeconds(new Date(blockedUntil(admission.next, at, policy)!), now));
        return {
          failed: async () => {},
          succeeded: async () => {
            const clear = (executor: Database | Tx) =>
              executor.delete(loginLockouts).where(eq(loginLockouts.emailHash, emailHash)).returning({ lockedUntil: loginLockouts.lockedUntil });
            // The usual success set no lock: its one statement needs no transaction of its own.
            if (!setLock) {
              await clear(db);
              return;
            }
            await db.transaction(async (tx2) => {
              const cleared = await clear(tx2);
              if (cleared[0]?.lockedUntil?.getTime() === admission.lockedUntil) await witness.lifted(tx2, 'signed_in');
            });
          },
          release: async () => {
            await withRow(emailHash, async (current, tx2) => {
              const withdrawn = withdrawAttempt(stateOf(current), { at, admission, before });
              await save(tx2, emailHash, withdrawn, clock.now());
              if (setLock && current.lockedUntil?.getTime() === admission.lockedUntil && withdrawn.lockedUntil !== admission.lockedUntil) {
                await witness.lifted(tx2, 'attempt_withdrawn');
              }
            });
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
