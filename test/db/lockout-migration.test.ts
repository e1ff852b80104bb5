/**
 * Migrations 0004-0006 replace the fixed-window lockout columns with a failure log. On a
 * database that already has lockout rows, the upgrade must grant no email fresh guesses and
 * must keep each escalation streak.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eq, sql } from 'drizzle-orm';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createLockout, lockoutKey, type LockWitness } from '../../src/abuse/lockout.js';

/** The audit trail of locks is the guard's (tested through GraphQL); this file tests the store. */
const unwitnessed: LockWitness = { locked: async () => {}, lifted: async () => {} };
import { openDatabase, type DatabaseHandle } from '../../src/db/client.js';
import { loginLockouts } from '../../src/db/schema.js';
import { TestClock } from '../support/clock.js';
import { onPostgres } from '../support/database.js';
import { createScratchDatabase, type ScratchDatabase } from '../support/pg-scratch.js';

const migrations = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../src/db/migrations');
const BEFORE_THE_LOG = 3; // 0003 is the last migration of the fixed-window lockout

/** A copy of the migrations folder that stops after migration `last`. */
function migrationsUpTo(last: number): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'authgraph-migrations-'));
  const journal = JSON.parse(readFileSync(path.join(migrations, 'meta/_journal.json'), 'utf8'));
  journal.entries = journal.entries.filter((entry: { idx: number }) => entry.idx <= last);
  for (const entry of journal.entries) copyFileSync(path.join(migrations, `${entry.tag}.sql`), path.join(dir, `${entry.tag}.sql`));
  mkdirSync(path.join(dir, 'meta'));
  writeFileSync(path.join(dir, 'meta/_journal.json'), JSON.stringify(journal));
  return dir;
}

let scratch: ScratchDatabase | undefined;
let handle: DatabaseHandle;
let oldFolder: string;
beforeAll(async () => {
  scratch = onPostgres ? await createScratchDatabase() : undefined;
  handle = await openDatabase({ databaseUrl: scratch?.url });
  oldFolder = migrationsUpTo(BEFORE_THE_LOG);
  const db = handle.db as never;
  await (handle.kind === 'postgres' ? migratePostgres(db, { migrationsFolder: oldFolder }) : migratePglite(db, { migrationsFolder: oldFolder }));
});
afterAll(async () => {
  await handle?.close();
  await scratch?.drop();
  if (oldFolder) rmSync(oldFolder, { recursive: true, force: true });
});

it('carries the old counts and levels into the failure log: no fresh guesses, and the streak goes on', async () => {
  const now = Date.now();
  const at = (secondsAgo: number) => new Date(now - secondsAgo * 1000).toISOString();
  const oldRow = (email: string, failures: number, windowStart: string, level: number, lockedUntil: string | null) =>
    sql`insert into login_lockouts (email_hash, failures, window_start, level, locked_until, updated_at)
        values (${lockoutKey(email)}, ${failures}, ${windowStart}::timestamptz, ${level}, ${lockedUntil}::timestamptz, ${at(0)}::timestamptz)`;
  await handle.db.execute(oldRow('four@example.com', 4, at(60), 0, null));
  await handle.db.execute(oldRow('locked@example.com', 4, at(300), 2, at(-100)));
  await handle.db.execute(oldRow('none@example.com', 0, at(60), 0, null));

  await handle.migrate();

  const clock = new TestClock(now);
  const lockout = createLockout({ db: handle.db, clock, policy: { failures: { count: 5, seconds: 900 }, baseSeconds: 60, maxSeconds: 900 } });
  // 4 failures before the upgrade: one more is the 5th, and then the email is blocked.
  const fifth = await lockout.reserve('four@example.com', unwitnessed);
  expect('failed' in fifth).toBe(true);
  expect(await lockout.reserve('four@example.com', unwitnessed)).toMatchObject({ retryAfter: expect.any(Number) });

  const stateOf = async (email: string) =>
    (await handle.db.select().from(loginLockouts).where(eq(loginLockouts.emailHash, lockoutKey(email))))[0]!;
  expect((await stateOf('none@example.com')).failureTimes).toEqual([]);

  // Locked at level 2 before the upgrade: still locked, and once that ends the next failure locks for 240 s.
  expect(await lockout.reserve('locked@example.com', unwitnessed)).toMatchObject({ retryAfter: 100 });
  clock.advance(100);
  const next = await lockout.reserve('locked@example.com', unwitnessed);
  expect('failed' in next).toBe(true);
  const row = await stateOf('locked@example.com');
  expect(row.level).toBe(3);
  expect(row.lockedUntil?.getTime()).toBe(now + (100 + 240) * 1000);
});
