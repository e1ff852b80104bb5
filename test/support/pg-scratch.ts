/**
 * A scratch database of its own on the PostgreSQL server of `npm run test:pg`, with its URL
 * (which openTestDatabase() does not expose), for tests that hand the URL to a child process.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { postgresUrl } from './database.js';

export interface ScratchDatabase {
  name: string;
  url: string;
  /** A client on the scratch database, for checking what a child process wrote. */
  sql: postgres.Sql;
  drop(): Promise<void>;
}

export async function createScratchDatabase(): Promise<ScratchDatabase> {
  if (!postgresUrl) throw new Error('createScratchDatabase needs AUTHGRAPH_TEST_PG_URL (npm run test:pg)');
  const name = `authgraph_cli_${randomBytes(6).toString('hex')}`;
  const admin = postgres(postgresUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(postgresUrl);
  url.pathname = `/${name}`;
  const sql = postgres(url.toString(), { max: 2, onnotice: () => {} });
  return {
    name,
    url: url.toString(),
    sql,
    async drop() {
      await sql.end({ timeout: 5 });
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}
