/**
 * Fixing the interleaving of concurrent requests on PostgreSQL (PGlite is one connection): hold a
 * lock from another connection, and wait until requests queue behind it.
 */
import { sql } from 'drizzle-orm';
import { expect } from 'vitest';
import type { Tx } from '../../src/db/client.js';
import type { ServedApp } from './served.js';

/** Takes a lock in a transaction of another connection (`take`) and holds it until release(). */
export async function holdInTransaction(app: Pick<ServedApp, 't'>, take: (tx: Tx) => Promise<unknown>) {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let locked!: () => void;
  const held = new Promise<void>((resolve) => (locked = resolve));
  const done = app.t.database.db.transaction(async (tx) => {
    await take(tx);
    locked();
    await gate;
  });
  await held;
  return {
    release: async () => {
      release();
      await done;
    },
  };
}

/** Waits until `n` requests wait for a lock, or `settled` resolved first (then false: that one never waited). */
export async function waitForLockWaiters(app: Pick<ServedApp, 't'>, n: number, settled: Promise<unknown>): Promise<boolean> {
  let finished = false;
  void settled.then(() => (finished = true));
  for (let i = 0; i < 600; i += 1) {
    const [row] = await app.t.database.db
      .select({ waiting: sql<number>`count(*)`.mapWith(Number) })
      .from(sql`pg_stat_activity`)
      .where(sql`datname = current_database() and wait_event_type = 'Lock'`);
    if (row!.waiting >= n) return true;
    if (finished) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`never ${n} requests waiting for a lock`);
}

/**
 * Starts `first`, waits until it waits for a lock, starts `second`, waits for it too, then lets
 * both go. Meanwhile every audit write is held back (SHARE on auth_events, from another
 * connection): each change stops at its audit event, inside its transaction, after it has read
 * what is left. Two changes that do not take the user's lock are both in flight there; with the
 * lock, the second waits for the first to commit.
 */
export async function interleaveAtAudit<A, B>(app: ServedApp, first: () => Promise<A>, second: () => Promise<B>): Promise<[A, B]> {
  const hold = await holdInTransaction(app, (tx) => tx.execute(sql`lock table auth_events in share mode`));
  const one = first();
  expect(await waitForLockWaiters(app, 1, one)).toBe(true);
  const two = second();
  expect(await waitForLockWaiters(app, 2, two)).toBe(true);
  await hold.release();
  return [await one, await two];
}
