import { createHash } from 'node:crypto';
import { and, eq, gt, isNull, lt, lte, or, sql } from 'drizzle-orm';
import type { Clock } from '../clock.js';
import type { RateLimit } from '../config.js';
import type { Database } from '../db/client.js';
import { loginLockouts } from '../db/schema.js';

export interface LockoutPolicy {
  /** `count` failures within `seconds` lock the email. */
  failures: RateLimit;
  /** First lockout, in seconds; each further one doubles, up to `maxSeconds`. */
  baseSeconds: number;
  maxSeconds: number;
}

/** A sign-in attempt that may go ahead, counted as a failure until it proves otherwise. */
export interface Reservation {
  /** The password was wrong: keep the count; locks the email when it reaches the limit. Returns the lock in seconds, or null. */
  failed(): Promise<number | null>;
  /** The password was right: clears the failures and the escalation. */
  succeeded(): Promise<void>;
  /** The attempt ended without a password verdict (e.g. overload): un-count it. */
  release(): Promise<void>;
}

export interface Lockout {
  /**
   * Counts an attempt for an email BEFORE its password is checked, atomically, so that any
   * number of concurrent attempts get at most `count` password checks per window. Returns the
   * seconds to wait instead when the email is locked or its attempts are used up.
   */
  reserve(email: string): Promise<Reservation | { retryAfter: number }>;
  /** Deletes entries with no lock in force and no failure within the window. */
  purgeStale(): Promise<number>;
}

const hashEmail = (email: string) => createHash('sha256').update(email).digest('base64url');
const secondsLeft = (until: Date, now: Date) => Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 1000));
// postgres.js takes no Date objects in raw SQL: pass instants as ISO strings with a cast.
const instant = (date: Date) => sql`${date.toISOString()}::timestamptz`;

/**
 * Temporary, escalating account lockout keyed by normalized email, whether or not an account
 * has it, so that a locked-out unknown email looks exactly like a locked-out real one.
 */
export function createLockout(deps: { db: Database; clock: Clock; policy: LockoutPolicy }): Lockout {
  const { db, clock, policy } = deps;
  const lockSeconds = (level: number) => Math.min(policy.baseSeconds * 2 ** level, policy.maxSeconds);

  async function lock(emailHash: string, now: Date): Promise<number | null> {
    const [row] = await db
      .select({ level: loginLockouts.level })
      .from(loginLockouts)
      .where(eq(loginLockouts.emailHash, emailHash));
    if (!row) return null;
    const seconds = lockSeconds(row.level);
    // Conditional, so that concurrent last failures escalate once, not twice.
    const [locked] = await db
      .update(loginLockouts)
      .set({
        // The window goes on: once this lock ends, the very next failure within it locks
        // again, for twice as long, instead of granting another full set of guesses.
        failures: policy.failures.count - 1,
        level: sql`${loginLockouts.level} + 1`,
        lockedUntil: new Date(now.getTime() + seconds * 1000),
        updatedAt: now,
      })
      .where(
        and(
          eq(loginLockouts.emailHash, emailHash),
          or(isNull(loginLockouts.lockedUntil), lte(loginLockouts.lockedUntil, now)),
        ),
      )
      .returning({ level: loginLockouts.level });
    return locked ? seconds : null;
  }

  return {
    async reserve(email) {
      const now = clock.now();
      const emailHash = hashEmail(email);
      const windowOpen = new Date(now.getTime() - policy.failures.seconds * 1000);
      const inWindow = sql`${loginLockouts.windowStart} > ${instant(windowOpen)}`;
      // One statement: counts the attempt unless a lock is in force (then no row comes back).
      const [row] = await db
        .insert(loginLockouts)
        .values({ emailHash, failures: 1, windowStart: now, updatedAt: now })
        .onConflictDoUpdate({
          target: loginLockouts.emailHash,
          set: {
            failures: sql`case when ${inWindow} then ${loginLockouts.failures} + 1 else 1 end`,
            windowStart: sql`case when ${inWindow} then ${loginLockouts.windowStart} else ${instant(now)} end`,
            updatedAt: now,
          },
          setWhere: or(isNull(loginLockouts.lockedUntil), lte(loginLockouts.lockedUntil, now)),
        })
        .returning({ failures: loginLockouts.failures, level: loginLockouts.level });
      if (!row) {
        const [current] = await db
          .select({ lockedUntil: loginLockouts.lockedUntil })
          .from(loginLockouts)
          .where(eq(loginLockouts.emailHash, emailHash));
        return { retryAfter: current?.lockedUntil ? secondsLeft(current.lockedUntil, now) : 1 };
      }
      // Attempts beyond the limit wait for the verdicts already under way; the last of those
      // locks the email for this long.
      if (row.failures > policy.failures.count) return { retryAfter: lockSeconds(row.level) };

      const reachedLimit = row.failures >= policy.failures.count;
      return {
        failed: () => (reachedLimit ? lock(emailHash, clock.now()) : Promise.resolve(null)),
        succeeded: async () => {
          await db.delete(loginLockouts).where(eq(loginLockouts.emailHash, emailHash));
        },
        release: async () => {
          await db
            .update(loginLockouts)
            .set({ failures: sql`greatest(${loginLockouts.failures} - 1, 0)` })
            .where(and(eq(loginLockouts.emailHash, emailHash), gt(loginLockouts.failures, 0)));
        },
      };
    },

    async purgeStale() {
      const now = clock.now();
      // Escalation is remembered for as long as the longest lockout, then forgotten.
      const quietSince = new Date(now.getTime() - Math.max(policy.failures.seconds, policy.maxSeconds) * 1000);
      const deleted = await db
        .delete(loginLockouts)
        .where(
          and(
            lt(loginLockouts.updatedAt, quietSince),
            or(isNull(loginLockouts.lockedUntil), lt(loginLockouts.lockedUntil, now)),
          ),
        )
        .returning({ emailHash: loginLockouts.emailHash });
      return deleted.length;
    },
  };
}
