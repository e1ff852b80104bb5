import { writeFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { bootstrap, type Runtime } from './bootstrap.js';
import { ConfigError, loadConfig } from './config.js';
import { DataDirLockedError } from './db/data-dir-lock.js';
import { createLogger } from './logger.js';
import { purgeExpired } from './purge.js';

/** Opens the configured database (migrated), runs `work`, and always closes it. */
async function withRuntime<T>(work: (runtime: Runtime) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const runtime = await bootstrap(config, createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel));
  try {
    return await work(runtime);
  } finally {
    await runtime.close();
  }
}

const program = new Command()
  .name('authgraph')
  .description('Administration of an authgraph server. Uses DATABASE_URL, or the PGlite files in DATA_DIR.')
  .exitOverride();

program
  .command('migrate')
  .description('Apply pending database migrations (the server also does this at start-up).')
  .action(() => withRuntime(async () => console.log('migrations applied')));

program
  .command('print-schema')
  .description('Print the GraphQL schema (SDL, sorted) that is committed as schema.graphql.')
  .option('--write', 'write it to schema.graphql instead of standard output')
  .action(async (options: { write?: boolean }) => {
    const { printSchemaSdl } = await import('./graphql/schema.js');
    if (options.write) writeFileSync('schema.graphql', printSchemaSdl());
    else process.stdout.write(printSchemaSdl());
  });

program
  .command('purge')
  .description('Delete revocation entries, refresh tokens and sessions that have expired.')
  .action(() =>
    withRuntime(async ({ services }) => {
      const counts = await purgeExpired(services);
      console.log(`purged ${counts.revokedTokens} revoked access tokens, ${counts.sessions} refresh tokens and sessions`);
    }),
  );

try {
  await program.parseAsync();
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  if (err instanceof ConfigError || err instanceof DataDirLockedError) {
    console.error(`authgraph: ${err.message}`);
  } else {
    console.error('authgraph:', err instanceof Error ? err.message : err);
  }
  process.exit(1);
}
