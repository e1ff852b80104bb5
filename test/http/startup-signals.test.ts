/**
 * SIGINT and SIGTERM before the server listens (keys, the database opening, migrations running),
 * to the real server in a child process. The signal lands at a chosen step deterministically:
 * with NODE_ENV=test, AUTHGRAPH_TEST_PAUSE_STARTUP makes the start-up wait there for a signal,
 * and says so in its log. On PGlite in a fresh DATA_DIR, or a scratch PostgreSQL database.
 */
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { onPostgres } from '../support/database.js';
import { GOOD_PASSWORD, REGISTER, uniqueEmail } from '../support/operations.js';
import { createScratchDatabase, type ScratchDatabase } from '../support/pg-scratch.js';
import {
  freePort,
  gql,
  killGroup,
  killSpawnedServers,
  logRecords,
  spawnServer,
  stopServer,
  waitUntilHealthy,
  within,
  type Started,
} from '../support/server-process.js';

const TEST_TIMEOUT = 180_000;
/** Far longer than closing PGlite takes, even on a slow machine. */
const EXIT_BOUND_MS = 60_000;
const JWT_SECRET = 'startup-signal-test-secret-startup-signal-0123';

/** Where a server keeps its data: a PGlite DATA_DIR (always made), and a scratch PostgreSQL database on PostgreSQL runs. */
interface Store {
  dataDir: string;
  scratch?: ScratchDatabase;
}

const stores: Store[] = [];

afterEach(() => killSpawnedServers());
afterAll(async () => {
  for (const { dataDir, scratch } of stores) {
    rmSync(dataDir, { recursive: true, force: true });
    await scratch?.drop();
  }
});

async function newStore(): Promise<Store> {
  const store: Store = { dataDir: mkdtempSync(path.join(tmpdir(), 'authgraph-startup-')) };
  if (onPostgres) store.scratch = await createScratchDatabase();
  stores.push(store);
  return store;
}

const lockOf = (store: Store) => path.join(store.dataDir, 'authgraph.lock');

async function start(store: Store, env: Record<string, string> = {}): Promise<Started> {
  const port = await freePort();
  return spawnServer(
    {
      NODE_ENV: 'test',
      DATA_DIR: store.dataDir,
      ...(store.scratch ? { DATABASE_URL: store.scratch.url } : {}),
      JWT_SECRET,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'info',
      ...env,
    },
    port,
  );
}

/** Starts a server that waits at `stage` for a signal; resolves with it and its pid once it waits there. */
async function startPausedAt(store: Store, stage: string): Promise<{ server: Started; pid: number }> {
  const server = await start(store, { AUTHGRAPH_TEST_PAUSE_STARTUP: stage });
  const paused = await vi.waitFor(
    () => {
      expect(server.hasExited(), `${server.stdout()}\n${server.stderr()}`).toBe(false);
      const record = logRecords(server).find((r) => r.msg === 'start-up paused until a signal (test hook)');
      expect(record, server.stdout()).toBeDefined();
      return record!;
    },
    { timeout: EXIT_BOUND_MS, interval: 100 },
  );
  expect(paused.stage).toBe(stage);
  return { server, pid: paused.pid as number };
}

/** The process ends by itself, with `code`, having said why on stderr without a stack trace, and left no lock. */
async function expectOrderlyStop(server: Started, store: Store, signal: string, stage: string) {
  const exit = await within(server.exited, EXIT_BOUND_MS);
  expect(exit, `${server.stdout()}\n${server.stderr()}`).toEqual({ code: 0, signal: null });
  // The pipes can deliver the last lines after the exit: waited for.
  await vi.waitFor(() => expect(server.stderr(), server.stdout()).toContain(`authgraph stopped by ${signal} during start-up (at ${stage}); nothing was served.`), {
    timeout: 10_000,
    interval: 50,
  });
  const output = `${server.stdout()}\n${server.stderr()}`;
  expect(output).not.toMatch(/^\s+at /m);
  expect(output).not.toMatch(/failed to start|"level":50/);
  expect(logRecords(server).some((r) => r.msg === 'authgraph is listening')).toBe(false);
  expect(existsSync(lockOf(store))).toBe(false);
}

/** How many migrations the store's database has recorded as applied (its drizzle table, which exists from the first start on). */
async function appliedMigrations(store: Store): Promise<number> {
  if (store.scratch) {
    const [row] = await store.scratch.sql`select count(*)::int as n from drizzle.__drizzle_migrations`;
    return row!.n as number;
  }
  const pglite = await PGlite.create({ dataDir: path.join(store.dataDir, 'pglite') });
  try {
    const result = await pglite.query<{ n: number }>('select count(*)::int as n from drizzle.__drizzle_migrations');
    return result.rows[0]!.n;
  } finally {
    await pglite.close();
  }
}

/** A start after the stop: it applies what was left, serves a sign-up, and stops cleanly. */
async function expectNextStartServes(store: Store) {
  const server = await start(store);
  await waitUntilHealthy(server);
  const registered = await gql(server.base, REGISTER, { input: { email: uniqueEmail('startup'), password: GOOD_PASSWORD } });
  expect(registered.body.data?.register?.__typename, JSON.stringify(registered.body)).toBe('AuthPayload');
  const { exit } = await stopServer(server, EXIT_BOUND_MS);
  expect(exit).toEqual({ code: 0, signal: null });
  expect(existsSync(lockOf(store))).toBe(false);
}

describe('a signal before the server listens', () => {
  it.each([
    ['open-database', 'SIGTERM'],
    ['migrate', 'SIGINT'],
    ['listen', 'SIGTERM'],
  ] as const)(
    'at %s (%s): the start-up stops there, closes what it opened, exits 0 without a stack trace and leaves no lock',
    async (stage, signal) => {
      const store = await newStore();
      const { server, pid } = await startPausedAt(store, stage);
      // PGlite's lock is taken once the database opens.
      if (!store.scratch) expect(existsSync(lockOf(store))).toBe(stage !== 'open-database');
      process.kill(pid, signal);
      await expectOrderlyStop(server, store, signal, stage);
    },
    TEST_TIMEOUT,
  );

  it(
    'during the migrations, twice (Ctrl-C through npm): the run is rolled back whole, exit 0, no lock; the next start applies every migration',
    async () => {
      const store = await newStore();
      // Paused inside the migrations' transaction, after the first migration's statements ran.
      const { server, pid } = await startPausedAt(store, 'mid-migration');
      process.kill(pid, 'SIGINT');
      process.kill(pid, 'SIGINT');
      await expectOrderlyStop(server, store, 'SIGINT', 'mid-migration');
      expect(await appliedMigrations(store)).toBe(0);
      await expectNextStartServes(store);
      expect(await appliedMigrations(store)).toBeGreaterThan(1);
    },
    TEST_TIMEOUT,
  );

  it(
    'killed (SIGKILL) in the middle of the migrations: nothing of the run is kept, and the next start takes over the stale lock, recovers and applies them all',
    async () => {
      const store = await newStore();
      const { server } = await startPausedAt(store, 'mid-migration');
      killGroup(server.child);
      await within(server.exited, EXIT_BOUND_MS);
      // The server died holding PGlite's lock (its pid is gone now).
      if (!store.scratch) expect(existsSync(lockOf(store))).toBe(true);
      // What the cut run left, read from a copy: opening PGlite recovers its files, which must be
      // left for the server's next start to do.
      const left: Store = store.scratch ? store : { dataDir: mkdtempSync(path.join(tmpdir(), 'authgraph-startup-copy-')) };
      if (!store.scratch) {
        stores.push(left);
        cpSync(store.dataDir, left.dataDir, { recursive: true });
      }
      expect(await appliedMigrations(left)).toBe(0);
      await expectNextStartServes(store);
      expect(await appliedMigrations(store)).toBeGreaterThan(1);
    },
    TEST_TIMEOUT,
  );
});
