/**
 * The lockout's PostgreSQL adapter under concurrent writers to one email's row: a success
 * deleting it, or the purge, while other attempts reserve. Races show on the real server only
 * (PGlite runs one statement at a time), but the file runs on both.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createLockout, lockoutKey, type LockWitness, type Lockout } from '../../src/abuse/lockout.js';
import type { DatabaseHandle } from '../../src/db/client.js';
import { loginLockouts } from '../../src/db/schema.js';
import { TestClock } from '../support/clock.js';
import { openTestDatabase } from '../support/database.js';

/** The audit trail of locks is the guard's (tested through GraphQL); this file tests the store. */
const unwitnessed: LockWitness = { locked: async () => {}, lifted: async () => {} };
const policy = { failures: { count: 5, seconds: 900 }, baseSeconds: 60, maxSeconds: 900 };
let database: DatabaseHandle;
beforeAll(async () => {
  database = await openTestDatabase();
});
afterAll(async () => {
  await database?.close();
});

/** Runs calls at once and returns the messages of those that threw. */
async function thrown(calls: Promise<unknown>[]): Promise<string[]> {
  const settled = await Promise.allSettled(calls);
  return settled.flatMap((s) => (s.status === 'rejected' ? [String((s.reason as Error)?.message ?? s.reason)] : []));
}

async function admitted(lockout: Lockout, email: string) {
  const reservation = await lockout.reserve(email, unwitnessed);
  if ('retryAfter' in reservation) throw new Error(`refused: ${reservation.retryAfter}`);
  return reservation;
}

// 1,500 lockout writes: a couple of seconds idle, many more on a loaded machine. Hence its own
// limit, and rounds that stop once the test is aborted (a timeout) instead of running on.
it('reserves without an error while a success deletes the same row (300 rounds of 1 success and 3 reserves at once)', async ({ signal }) => {
  const lockout = createLockout({ db: database.db, clock: new TestClock(), policy });
  const errors: string[] = [];
  for (let i = 0; i < 300; i++) {
    signal.throwIfAborted();
    const email = `success-race-${i}@example.com`;
    const first = await admitted(lockout, email);
    errors.push(...(await thrown([first.succeeded(), lockout.reserve(email, unwitnessed), lockout.reserve(email, unwitnessed), lockout.reserve(email, unwitnessed)])));
  }
  expect(errors).toEqual([]);
}, 120_000);

it('reserves without an error while the purge deletes the same stale rows, and a purged email starts afresh', async () => {
  const clock = new TestClock();
  const lockout = createLockout({ db: database.db, clock, policy });
  const emails = Array.from({ length: 200 }, (_, i) => `purge-race-${i}@example.com`);
  for (const email of emails) await (await admitted(lockout, email)).failed();
  clock.advance(1800); // the quiet spell is over: every row is stale
  const errors = await thrown([lockout.purgeStale(), ...emails.map((email) => lockout.reserve(email, unwitnessed)), lockout.purgeStale()]);
  expect(errors).toEqual([]);
  // Whichever came first, each email now holds exactly the one new failure.
  const rows = await database.db.select().from(loginLockouts);
  for (const email of emails) {
    const row = rows.find((r) => r.emailHash === lockoutKey(email));
    expect(row?.failureTimes, email).toEqual([clock.now()]);
  }
  const [one] = await database.db.select().from(loginLockouts).where(eq(loginLockouts.emailHash, lockoutKey(emails[0]!)));
  expect(one?.level).toBe(0);
});
