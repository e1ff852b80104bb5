import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MigrationMeta } from 'drizzle-orm/migrator';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import type { PgDatabase, PgDialect, PgQueryResultHKT, PgSession } from 'drizzle-orm/pg-core';

const migrationsFolder = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

export interface MigrateOptions {
  /**
   * Runs inside the migrations' one transaction, after each migration (applied, or skipped as
   * applied before). A throw rolls back every migration of this run: the start-up uses it to stop
   * on a signal without leaving a migration half applied.
   */
  afterEach?: () => Promise<void>;
}

/**
 * Applies the migrations not applied yet, as drizzle's own migrators do (PGlite's and
 * postgres.js's are the same two lines): its dialect runs them all in one transaction, iterating
 * them with `for await`, so `afterEach` runs between two of them, inside that transaction.
 */
export async function applyMigrations(db: PgDatabase<PgQueryResultHKT, any>, options: MigrateOptions = {}): Promise<void> {
  const migrations = readMigrationFiles({ migrationsFolder });
  const { afterEach } = options;
  const stepped: MigrationMeta[] = afterEach
    ? Object.assign([...migrations], {
        async *[Symbol.asyncIterator]() {
          for (const migration of migrations) {
            yield migration;
            await afterEach();
          }
        },
      })
    : migrations;
  // dialect and session are drizzle internals (what its migrate() functions pass on).
  const { dialect, session } = db as unknown as { dialect: PgDialect; session: PgSession };
  await dialect.migrate(stepped, session, { migrationsFolder });
}
