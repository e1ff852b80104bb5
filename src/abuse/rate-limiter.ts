import { lt, sql } from 'drizzle-orm';
import type { Clock } from '../clock.js';
import type { RateLimit, RateLimitName } from '../config.js';
import { sha256Digest } from '../crypto/digest.js';
import type { Database } from '../db/client.js';
import { rateLimits } from '../db/schema.js';
import { addSeconds, retryAfterSeconds } from '../time.js';

/** An attempt over its limit: how long to wait, and whether it is the first one refused in its window. */
export interface Refusal {
  retryAfter: number;
  first: boolean;
}

export interface RateLimiter {
  /** Counts one attempt against a limit for a key; returns a Refusal when it is over the limit, else null. */
  hit(name: RateLimitName, key: string): Promise<Refusal | null>;
  /** Deletes counters whose window has ended; returns how many. */
  purgeEnded(): Promise<number>;
}

/** Keys (IPs, emails) are stored hashed: bounded in size and not readable from the table. */
export function limitKey(name: string, key: string): string {
  return `${name}:${sha256Digest(key, 'base64url')}`;
}

/**
 * Fixed-window counters in PostgreSQL: one atomic upsert per attempt, so every server
 * instance on the database shares the counts and no attempt is lost to a race.
 */
export function createRateLimiter(deps: {
  db: Database;
  clock: Clock;
  limits: Record<RateLimitName, RateLimit>;
}): RateLimiter {
  const { db, clock, limits } = deps;
  return {
    async hit(name, key) {
      const limit = limits[name];
      const now = clock.now();
      const windowMs = limit.seconds * 1000;
      const windowStart = new Date(Math.floor(now.getTime() / windowMs) * windowMs);
      const windowEnd = addSeconds(windowStart, limit.seconds);
      // A counter whose window is current (or ahead, when another instance's clock is) counts
      // on; an ended one starts over at 1.
      const [row] = await db
        .insert(rateLimits)
        .values({ key: limitKey(name, key), windowStart, windowEnd, hits: 1 })
        .onConflictDoUpdate({
          target: rateLimits.key,
          set: {
            hits: sql`case when ${rateLimits.windowStart} >= excluded.window_start then ${rateLimits.hits} + 1 else 1 end`,
            windowStart: sql`greatest(${rateLimits.windowStart}, excluded.window_start)`,
            windowEnd: sql`greatest(${rateLimits.windowEnd}, excluded.window_end)`,
          },
        })
        .returning({ hits: rateLimits.hits, windowEnd: rateLimits.windowEnd });
      if (!row || row.hits <= limit.count) return null;
      return {
        retryAfter: retryAfterSeconds(row.windowEnd, now),
        first: row.hits === limit.count + 1,
      };
    },
    async purgeEnded() {
      const deleted = await db
        .delete(rateLimits)
        .where(lt(rateLimits.windowEnd, clock.now()))
        .returning({ key: rateLimits.key });
      return deleted.length;
    },
  };
}
