/**
 * The PostgreSQL side of a run: which server to use, a fresh database per run (dropped at
 * clean-up), and the bulk load of the scale run.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { deferCleanup } from './lifecycle.js';

const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export interface PostgresServer {
  adminUrl: string;
  version: string;
  /** Where the URL came from, for the report. */
  source: string;
}

const connect = (url: string, max = 1) => postgres(url, { max, onnotice: () => {}, connect_timeout: 5, fetch_types: false });

async function probe(url: string): Promise<string> {
  const sql = connect(url);
  try {
    const [row] = await sql<{ server_version: string }[]>`show server_version`;
    return row!.server_version;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** URL without its password, for printing. */
export function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

/**
 * AUTHGRAPH_TEST_PG_URL when set (failing if it is unreachable: the caller asked for it), else
 * the local default if it answers, else null (the run is PGlite only).
 */
export async function findPostgres(): Promise<{ server: PostgresServer | null; note: string }> {
  const asked = process.env.AUTHGRAPH_TEST_PG_URL?.trim();
  if (asked) {
    const version = await probe(asked).catch((err: unknown) => {
      throw new Error(`AUTHGRAPH_TEST_PG_URL (${redact(asked)}) is unreachable: ${String(err)}`);
    });
    return { server: { adminUrl: asked, version, source: 'AUTHGRAPH_TEST_PG_URL' }, note: '' };
  }
  try {
    const version = await probe(DEFAULT_ADMIN_URL);
    return { server: { adminUrl: DEFAULT_ADMIN_URL, version, source: 'default, AUTHGRAPH_TEST_PG_URL unset' }, note: '' };
  } catch (err) {
    return {
      server: null,
      note: `AUTHGRAPH_TEST_PG_URL is unset and ${DEFAULT_ADMIN_URL} did not answer (${String(err)}): PGlite only`,
    };
  }
}

export interface BenchDatabase {
  name: string;
  url: string;
  /** Drops it (also done at clean-up if the run ends first). */
  drop(): Promise<void>;
}

/** Creates an empty database for this run; the server migrates it when it starts. */
export async function createDatabase(server: PostgresServer, label: string): Promise<BenchDatabase> {
  const name = `authgraph_bench_${label}_${randomBytes(4).toString('hex')}`;
  const admin = connect(server.adminUrl);
  try {
    await admin.unsafe(`create database ${name}`);
  } finally {
    await admin.end({ timeout: 5 });
  }
  let dropped = false;
  const drop = async () => {
    if (dropped) return;
    dropped = true;
    const sql = connect(server.adminUrl);
    try {
      await sql.unsafe(`drop database if exists ${name} with (force)`);
    } finally {
      await sql.end({ timeout: 5 });
    }
  };
  deferCleanup(drop);
  const url = new URL(server.adminUrl);
  url.pathname = `/${name}`;
  return { name, url: url.toString(), drop };
}

/**
 * Fills a migrated database with `count` users (each with role `user`, as registration gives,
 * and one fixed argon2 hash: no argon2 per row) and `count` revoked access tokens (random jtis,
 * expiring within `accessTokenTtl` seconds, as real ones do), then vacuums and analyzes so the
 * planner sees the tables as they are, and checkpoints. Returns the milliseconds it took.
 */
export async function bulkLoad(url: string, options: { count: number; passwordHash: string; accessTokenTtl: number }): Promise<number> {
  const started = performance.now();
  const { count, passwordHash, accessTokenTtl } = options;
  const session = async (work: (sql: postgres.Sql) => Promise<unknown>) => {
    const sql = connect(url);
    try {
      await sql`set synchronous_commit = off`;
      await sql`set work_mem = '256MB'`;
      // The rows are consistent by construction; skipping the foreign-key triggers halves the
      // load. Only a superuser may; anyone else loads with the checks.
      await sql`set session_replication_role = replica`.catch(() => {});
      await work(sql);
    } finally {
      await sql.end({ timeout: 5 });
    }
  };
  await Promise.all([
    session(
      (sql) => sql`
        with inserted as (
          insert into users (email, password_hash, name, email_verified)
          select 'bulk-' || g || '@bench.example.com', ${passwordHash}, 'Bulk user ' || g, true
          from generate_series(1, ${count}::int) g
          returning id
        )
        insert into user_roles (user_id, role) select id, 'user' from inserted`,
    ),
    // Sorted before insertion: the primary key's b-tree is then filled in order.
    session(
      (sql) => sql`
        insert into revoked_tokens (jti, expires_at)
        select jti, now() + (1 + random() * (${accessTokenTtl}::int - 1)) * interval '1 second'
        from (select gen_random_uuid()::text as jti from generate_series(1, ${count}::int) order by 1) s`,
    ),
  ]);
  await session(async (sql) => {
    await sql`vacuum analyze users, user_roles, revoked_tokens`;
    // Writes the loaded pages out now, not during the measurement that follows (superuser or
    // pg_checkpoint only; without it the measurement may pay for the checkpoint).
    await sql`checkpoint`.catch(() => {});
  });
  return performance.now() - started;
}

/** Row counts of the tables the scale run fills, as a check that the load happened. */
export async function countRows(url: string): Promise<{ users: number; revokedTokens: number }> {
  const sql = connect(url);
  try {
    const [row] = await sql<{ users: string; revoked: string }[]>`
      select (select count(*) from users) as users, (select count(*) from revoked_tokens) as revoked`;
    return { users: Number(row!.users), revokedTokens: Number(row!.revoked) };
  } finally {
    await sql.end({ timeout: 5 });
  }
}
