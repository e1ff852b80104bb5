import { createHash } from 'node:crypto';
import { and, eq, gte, isNull, lt, or, sql } from 'drizzle-orm';
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

export interface Lockout {
  /** Seconds the email stays locked, or null. */
  lockedFor(email: string): Promise<number | null>;
  /** Counts a failed sign-in; returns the lockout it caused, in seconds, or null. */
  recordFailure(email: string): Promise<number | null>;
  /** A successful sign-in clears the failures and the escalation. */
  reset(email: string): Promise<void>;
  /** Deletes entries with no lock in force and no failure within the window. */
  purgeStale(): Promise<number>;
}

const hashEmail = (email: string) => createHash('sha256').update(email).digest('base64url');
const secondsLeft = (until: Date, now: Date) => Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 1000));

/**
 * Temporary, escalating account lockout keyed by normalized email, whether or not an account
 * has it, so that a locked-out unknown email looks exactly like a locked-out real one.
 */
export function createLockout(deps: { db: Database; clock: Clock; policy: LockoutPolicy }): Lockout {
  const { db, clock, policy } = deps;
  return {
    async lockedFor(email) {
      const now = clock.now();
      const [row] = await db
        .select({ lockedUntil: loginLockouts.lockedUntil })
        .from(loginLockouts)
        .where(eq(loginLockouts.emailHash, hashEmail(email)));
      return row?.lockedUntil && row.lockedUntil > now ? secondsLeft(row.lockedUntil, now) : null;
    },

    async recordFailure(email) {
      const now = clock.now();
      const emailHash = hashEmail(email);
      const windowOpen = new Date(now.getTime() - policy.failures.seconds * 1000);
      const [row] = await db
        .insert(loginLockouts)
        .values({ emailHash, failures: 1, windowStart: now, updatedAt: now })
        .onConflictDoUpdate({
          target: loginLockouts.emailHash,
          set: {
            failures: sql`case when ${loginLockouts.windowStart} > ${windowOpen} then ${loginLockouts.failures} + 1 else 1 end`,
            windowStart: sql`case when ${loginLockouts.windowStart} > ${windowOpen} then ${loginLockouts.windowStart} else ${now} end`,
            updatedAt: now,
          },
        })
        .returning();
      if (!row || row.failures < policy.failures.count) return null;
      const seconds = Math.min(policy.baseSeconds * 2 ** row.level, policy.maxSeconds);
      // Conditional on the count, so that concurrent failures escalate once, not twice.
      const [locked] = await db
        .update(loginLockouts)
        .set({
          failures: 0,
          windowStart: now,
          level: sql`${loginLockouts.level} + 1`,
          lockedUntil: new Date(now.getTime() + seconds * 1000),
          updatedAt: now,
        })
        .where(and(eq(loginLockouts.emailHash, emailHash), gte(loginLockouts.failures, policy.failures.count)))
        .returning({ lockedUntil: loginLockouts.lockedUntil });
      return locked ? seconds : null;
    },

    async reset(email) {
      await db.delete(loginLockouts).where(eq(loginLockouts.emailHash, hashEmail(email)));
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
