import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { openDatabase, type DatabaseHandle } from '../../src/db/client.js';

/**
 * The time limit of a test that opens a database of its own, as long as a hook gets for it
 * (vitest.config.ts hookTimeout): PGlite starts in ~2 s on an idle machine, and such tests took
 * up to 20 s of the default 30 s limit on a loaded one.
 */
export const OWN_DATABASE_TIMEOUT = 60_000;

/** Set by `npm run test:pg`: the admin URL of the PostgreSQL server the suite runs on. */
export const postgresUrl = process.env.AUTHGRAPH_TEST_PG_URL;
export const onPostgres = Boolean(postgresUrl);

/**
 * A migrated, empty database for one test file: in-memory PGlite, or under `test:pg` a
 * database of its own on the PostgreSQL server, dropped on close, so runs never collide.
 */
export async function openTestDatabase(): Promise<DatabaseHandle> {
  if (!postgresUrl) {
    const handle = await openDatabase({});
    await handle.migrate();
    return handle;
  }
  const name = `authgraph_test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(postgresUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(postgresUrl);
  url.pathname = `/${name}`;
  const handle = await openDatabase({ databaseUrl: url.toString(), maxConnections: 20 });
  await handle.migrate();
  return {
    ...handle,
    close: async () => {
      await handle.close();
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}
