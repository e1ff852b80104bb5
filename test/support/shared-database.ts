/**
 * One database opened by two app instances, as two servers on one PostgreSQL open it: each gets a
 * DatabaseHandle of its own (its own pool and LISTEN connection). The second one's LISTEN
 * connection goes through a TCP proxy that a test can break: blackholed, it holds the bytes of
 * the open connection (a silent network) and keeps new ones from getting through, so a lost
 * listener stays lost for as long as the test needs (postgres.js reconnects within
 * milliseconds, sooner than a test could act). On PGlite (one process, one database) both share
 * the one handle.
 */
import type postgres from 'postgres';
import { openDatabase, type DatabaseHandle } from '../../src/db/client.js';
import { openTestDatabase, postgresUrl } from './database.js';
import { createScratchDatabase } from './pg-scratch.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

export interface SharedDatabase {
  /** The first instance's handle (on PGlite, the only one). */
  first: DatabaseHandle;
  /** The second instance's handle (on PGlite, the same as `first`). */
  second: DatabaseHandle;
  /** PostgreSQL only (else null): a client of the test's own on the database, apart from both instances. */
  sql: postgres.Sql | null;
  /** PostgreSQL only (else null): the proxy the second handle's LISTEN connection goes through. */
  secondListenProxy: TcpProxy | null;
  /** Closes both handles (close the apps on them first) and drops the database. */
  close(): Promise<void>;
}

/** A migrated, empty database for one test file, opened twice on PostgreSQL. */
export async function openSharedDatabase(): Promise<SharedDatabase> {
  if (!postgresUrl) {
    const handle = await openTestDatabase();
    return { first: handle, second: handle, sql: null, secondListenProxy: null, close: () => handle.close() };
  }
  const scratch = await createScratchDatabase();
  const handles: DatabaseHandle[] = [];
  let proxy: TcpProxy | null = null;
  const close = async () => {
    for (const handle of handles.splice(0)) await handle.close();
    await proxy?.close();
    await scratch.drop();
  };
  try {
    const first = await openDatabase({ databaseUrl: scratch.url, maxConnections: 5 });
    handles.push(first);
    await first.migrate();
    const server = new URL(scratch.url);
    proxy = await startTcpProxy({ host: server.hostname, port: Number(server.port || 5432) });
    const listenUrl = new URL(scratch.url);
    listenUrl.hostname = '127.0.0.1';
    listenUrl.port = String(proxy.port);
    const second = await openDatabase({ databaseUrl: scratch.url, listenUrl: listenUrl.toString(), maxConnections: 5 });
    handles.push(second);
    return { first, second, sql: scratch.sql, secondListenProxy: proxy, close };
  } catch (err) {
    await close();
    throw err;
  }
}
