/**
 * DATABASE_PREPARED_STATEMENTS: drizzle's statements are prepared once per connection (one round
 * trip each, planned once) unless it is false, for a pooler that cannot keep them. Read from
 * PostgreSQL's own view of the connection, pg_prepared_statements: on a pool of one, and on the
 * pool the server itself opens from its environment.
 */
import { eq, sql } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import { bootstrap, type Runtime } from '../../src/bootstrap.js';
import { loadConfig } from '../../src/config.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/client.js';
import { users } from '../../src/db/schema.js';
import { createLogger } from '../../src/logger.js';
import { TEST_JWT_SECRET, TEST_KEY_ENCRYPTION_KEY } from '../support/app.js';
import { postgresUrl } from '../support/database.js';
import { createScratchDatabase, type ScratchDatabase } from '../support/pg-scratch.js';

describe.runIf(postgresUrl)('prepared statements on PostgreSQL', () => {
  let scratch: ScratchDatabase | undefined;
  let handle: DatabaseHandle | undefined;
  let runtime: Runtime | undefined;

  afterEach(async () => {
    await runtime?.close();
    await handle?.close();
    await scratch?.drop();
    runtime = handle = scratch = undefined;
  });

  /** One connection, so every statement below runs on the connection the view describes. */
  async function open(preparedStatements?: boolean) {
    scratch = await createScratchDatabase();
    handle = await openDatabase({ databaseUrl: scratch.url, maxConnections: 1, preparedStatements });
    await handle.migrate();
    return handle.db;
  }

  const userQuery = (db: DatabaseHandle['db']) => db.select({ id: users.id }).from(users).where(eq(users.email, 'nobody@example.com'));
  const preparedTexts = async (db: DatabaseHandle['db']) => {
    const rows = (await db.execute(sql`select statement from pg_prepared_statements`)) as unknown as { statement: string }[];
    return rows.map((row) => row.statement);
  };

  it('prepares drizzle statements by default, in and out of transactions, once each', async () => {
    const db = await open();
    for (let i = 0; i < 3; i++) expect(await userQuery(db)).toEqual([]);
    await db.transaction(async (tx) => {
      await tx.update(users).set({ name: 'x' }).where(eq(users.email, 'in-a-transaction@example.com'));
      // A savepoint's statements too.
      await tx.transaction(async (nested) => {
        await nested.delete(users).where(eq(users.email, 'in-a-savepoint@example.com'));
      });
    });
    const texts = await preparedTexts(db);
    expect(texts.filter((text) => text.startsWith('select "id" from "users"'))).toHaveLength(1);
    expect(texts.some((text) => text.startsWith('update "users"'))).toBe(true);
    expect(texts.some((text) => text.startsWith('delete from "users"'))).toBe(true);
  });

  it('prepares nothing, not even the transaction\'s commit, when DATABASE_PREPARED_STATEMENTS is false', async () => {
    const db = await open(false);
    expect(await userQuery(db)).toEqual([]);
    await db.transaction(async (tx) => {
      await tx.update(users).set({ name: 'x' }).where(eq(users.email, 'in-a-transaction@example.com'));
    });
    expect(await preparedTexts(db)).toEqual([]);
  });

  // The server's own path: environment, configuration, bootstrap, pool. The query that reads the
  // view is itself drizzle's, so on whichever connection of the pool it runs, it lists itself
  // exactly when statements are prepared.
  it.each([
    ['unset', 'prepares its statements', {}, true],
    ['false', 'prepares none', { DATABASE_PREPARED_STATEMENTS: 'false' }, false],
  ])('the server started with DATABASE_PREPARED_STATEMENTS %s %s', async (_setting, _outcome, env, prepared) => {
    scratch = await createScratchDatabase();
    const config = loadConfig({
      DATABASE_URL: scratch.url,
      JWT_SECRET: TEST_JWT_SECRET,
      KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY,
      ...env,
    });
    runtime = await bootstrap(config, createLogger('silent'));
    // With a parameter: postgres.js sends a statement without any by the simple protocol.
    const rows = (await runtime.database.db.execute(
      sql`select statement from pg_prepared_statements where statement like ${'%'}`,
    )) as unknown as { statement: string }[];
    const texts = rows.map((row) => row.statement);
    expect(texts.includes('select statement from pg_prepared_statements where statement like $1')).toBe(prepared);
    if (!prepared) expect(texts).toEqual([]);
  });
});
