import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { acquireDataDirLock } from './data-dir-lock.js';
import { applyMigrations, type MigrateOptions } from './migrate.js';
import { socketWithReplyDeadline } from './reply-deadline.js';
import * as schema from './schema.js';

export type Database = PgDatabase<PgQueryResultHKT, typeof schema>;
/** A transaction handle; the same query API as Database. */
export type Tx = Parameters<Parameters<Database['transaction']>[0]>[0];

/** An open database with the operations the app needs beyond queries. */
export interface DatabaseHandle {
  db: Database;
  kind: 'pglite' | 'postgres';
  /** Applies the migrations not applied yet, all in one transaction. */
  migrate(options?: MigrateOptions): Promise<void>;
  ping(): Promise<void>;
  /**
   * LISTENs on a channel, on a connection of its own that is reconnected after every loss.
   * Notifications sent while it is not listening are lost, so `onLost` says when that starts
   * and `onListening` when it is listening again (and once at first).
   */
  listen(channel: string, events: ListenEvents): Promise<Listener>;
  close(): Promise<void>;
}

export interface ListenEvents {
  onMessage(payload: string): void;
  onListening?(): void;
  onLost?(): void;
}

export interface Listener {
  /** The PostgreSQL backend pid of the listening connection while it is up; null on PGlite. */
  pid(): number | null;
  /** Drops the connection and opens it again (a listener that stopped answering); no-op on PGlite. */
  reconnect(): void;
  /**
   * True on PGlite: a notification reaches the listener before the statement that committed it
   * returns, so there is never one in flight.
   */
  inProcess: boolean;
  stop(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** postgres:// URL; without it PGlite is used. */
  databaseUrl?: string | undefined;
  /**
   * Where LISTEN connects (default databaseUrl): it needs a session of its own, which a
   * transaction-mode pooler does not give.
   */
  listenUrl?: string | undefined;
  /** Where PGlite keeps its files; undefined keeps them in memory (tests). */
  dataDir?: string | undefined;
  /** Connections in the postgres.js pool. */
  maxConnections?: number;
  /**
   * Seconds to open a PostgreSQL connection, and that one statement may run (the server cancels
   * it; a connection that then still gets no reply is dropped). Unset: postgres.js's defaults
   * (30 s to connect, no statement limit).
   */
  timeouts?: { connect: number; statement: number } | undefined;
  /** Prepare each statement once per connection (default true); false behind a pooler that cannot keep them. */
  preparedStatements?: boolean | undefined;
}

/** How long /ready waits for the database before it answers 503. */
const PING_DEADLINE_MS = 2000;
/** What a statement gets beyond the server's statement_timeout for its reply to arrive. */
const REPLY_GRACE_MS = 2000;

/**
 * Seconds before a connection that failed is opened again: postgres.js's own jittered growth,
 * capped at 2 s instead of 20 s. Its shared retry count grows with every failed connection, so
 * after an outage its delay outlasts a request's deadline many times over: the server would stay
 * unavailable long after the database is back. Attempts are still bounded by the pool's size.
 */
const reconnectDelay = (retries: number) => (0.5 + Math.random() / 2) * Math.min(3 ** retries / 100, 2);

/** Rejects when `work` has not settled within `ms`; the work itself goes on. */
function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

/**
 * The postgres.js client as drizzle sees it, with each of drizzle's statements prepared once per
 * connection, as postgres.js does for its own queries. drizzle asks for unnamed statements, and
 * postgres.js sends one with parameters in two round trips (Parse and Describe, wait for the
 * parameter types, then Bind and Execute), which PostgreSQL parses and plans every time. A
 * prepared statement is one round trip, planned once. postgres.js keeps them per connection,
 * forgets them when it reconnects, and retries a statement whose plan PostgreSQL dropped (a
 * migration changed a table under it).
 */
function preparingStatements<S extends postgres.Sql | postgres.TransactionSql>(client: S): S {
  type Unsafe = postgres.Sql['unsafe'];
  return new Proxy(client, {
    get(target, key, receiver) {
      if (key === 'unsafe') {
        const unsafe: Unsafe = (query, params, options) => target.unsafe(query, params, { ...options, prepare: true });
        return unsafe;
      }
      if (key === 'begin' || key === 'savepoint') {
        // The transaction's own client (and a savepoint's) prepares too.
        return (...args: unknown[]) => {
          const body = args.pop() as (sql: postgres.TransactionSql) => unknown;
          const open = Reflect.get(target, key, receiver) as (...a: unknown[]) => unknown;
          return open.call(target, ...args, (sql: postgres.TransactionSql) => body(preparingStatements(sql)));
        };
      }
      return Reflect.get(target, key, receiver);
    },
  });
}

/** Opens PostgreSQL through postgres.js when a URL is given, otherwise embedded PGlite. */
export async function openDatabase(options: OpenDatabaseOptions): Promise<DatabaseHandle> {
  if (options.databaseUrl) {
    const url = options.databaseUrl;
    const { timeouts } = options;
    const common = {
      onnotice: () => {},
      // postgres.js 3.4.9 fetches array types on each new connection without awaiting the
      // query: when that connection drops, the rejection is unhandled and ends the process
      // (porsager/postgres #1192, #1205, #1223). drizzle parses and serializes the one array
      // column (timestamptz[]) itself, so the fetch buys nothing here.
      fetch_types: false,
      // postgres.js's own statements (begin, commit; the migrations' and the listener's) are
      // prepared unless this is false too.
      prepare: options.preparedStatements !== false,
      ...(timeouts ? { connect_timeout: timeouts.connect } : {}),
      backoff: reconnectDelay,
    } satisfies postgres.Options<Record<string, never>>;
    const client = postgres(url, {
      ...common,
      max: options.maxConnections ?? 10,
      ...(timeouts
        ? {
            connection: { statement_timeout: timeouts.statement * 1000 },
            socket: socketWithReplyDeadline(timeouts.statement * 1000 + REPLY_GRACE_MS),
          }
        : {}),
    });
    const db = drizzlePostgres(options.preparedStatements === false ? client : preparingStatements(client), { schema });
    return {
      db: db as unknown as Database,
      kind: 'postgres',
      // On a connection of its own, without the request timeouts: a migration may rightly run
      // longer than any request's statement.
      migrate: async (migrateOptions) => {
        const migrator = postgres(url, { ...common, max: 1 });
        try {
          await applyMigrations(drizzlePostgres(migrator), migrateOptions);
        } finally {
          await migrator.end({ timeout: 5 });
        }
      },
      ping: async () => {
        await withDeadline(db.execute(sql`select 1`), PING_DEADLINE_MS, 'the database');
      },
      listen: (channel, events) => listenOnPostgres(options.listenUrl ?? url, common, channel, events),
      close: () => client.end({ timeout: 5 }),
    };
  }

  let releaseLock = () => {};
  let dataDir: string | undefined;
  if (options.dataDir) {
    mkdirSync(options.dataDir, { recursive: true });
    // PGlite is a single-process database: a second process on the same files corrupts them.
    releaseLock = acquireDataDirLock(options.dataDir);
    dataDir = path.join(options.dataDir, 'pglite');
  }
  try {
    const client = await PGlite.create(dataDir ? { dataDir } : {});
    const db = drizzlePglite(client, { schema });
    return {
      db: db as unknown as Database,
      kind: 'pglite',
      migrate: (migrateOptions) => applyMigrations(db, migrateOptions),
      ping: async () => {
        await withDeadline(db.execute(sql`select 1`), PING_DEADLINE_MS, 'the database');
      },
      // One process: notifications come from this same database, delivered on commit; the
      // listener can't be lost.
      listen: async (channel, events) => {
        const unsubscribe = await client.listen(channel, events.onMessage);
        events.onListening?.();
        return { pid: () => null, reconnect: () => {}, stop: unsubscribe, inProcess: true };
      },
      close: async () => {
        await client.close();
        releaseLock();
      },
    };
  } catch (err) {
    releaseLock();
    throw err;
  }
}

/**
 * How often the listening connection proves it still answers, and how long it gets to: a listener
 * cut off without its socket closing (a silent network) is found out within twice this.
 */
const LISTENER_PING_MS = 2000;

/**
 * LISTEN on a postgres.js client of its own (one connection, never recycled). A loss is seen
 * when the socket closes (a terminated backend, a restart) or when a ping gets no answer (a
 * silent network); the connection is then opened again, with growing pauses, until it listens.
 */
async function listenOnPostgres(
  url: string,
  common: postgres.Options<Record<string, never>>,
  channel: string,
  events: ListenEvents,
): Promise<Listener> {
  let stopped = false;
  let client: postgres.Sql | null = null;
  let pid: number | null = null;
  let failures = 0;
  let retry: NodeJS.Timeout | undefined;

  const lose = (lost: postgres.Sql) => {
    if (stopped || client !== lost) return;
    client = null;
    const wasListening = pid !== null;
    pid = null;
    void lost.end({ timeout: 0 }).catch(() => {});
    if (wasListening) events.onLost?.();
    retry = setTimeout(connect, reconnectDelay(failures++) * 1000);
    retry.unref();
  };

  const connect = async () => {
    if (stopped) return;
    const candidate: postgres.Sql = postgres(url, {
      ...common,
      max: 1,
      idle_timeout: 0,
      max_lifetime: null,
      connection: { application_name: 'authgraph-listener' },
      onclose: () => lose(candidate),
      // postgres.js's own option (its listen() is built on it), missing from its types.
      ...({
        onnotify: (from: string, payload: string) => {
          if (from === channel && client === candidate) events.onMessage(payload);
        },
      } as object),
    });
    client = candidate;
    try {
      // Bounded like the ping: a network that goes silent after the handshake must not leave the
      // listener waiting for good (connect_timeout covers the handshake only).
      await withDeadline(candidate.unsafe(`listen "${channel.replace(/"/g, '""')}"`), LISTENER_PING_MS, 'LISTEN');
      const [row] = await withDeadline(candidate<{ pid: number }[]>`select pg_backend_pid() as pid`, LISTENER_PING_MS, 'the listener');
      if (client !== candidate) return;
      pid = row!.pid;
      failures = 0;
      events.onListening?.();
    } catch {
      lose(candidate);
    }
  };

  const ping = setInterval(() => {
    const current = client;
    if (!current || pid === null) return;
    withDeadline(current`select 1`, LISTENER_PING_MS, 'the listener').catch(() => lose(current));
  }, LISTENER_PING_MS);
  ping.unref();

  await connect();
  return {
    pid: () => pid,
    inProcess: false,
    reconnect: () => {
      if (client) lose(client);
    },
    stop: async () => {
      stopped = true;
      clearInterval(ping);
      clearTimeout(retry);
      const last = client;
      client = null;
      pid = null;
      await last?.end({ timeout: 5 });
    },
  };
}
