import { createServer } from 'node:http';
import { createApp } from './app.js';
import { bootstrap } from './bootstrap.js';
import { ConfigError, loadConfig } from './config.js';
import { DataDirLockedError } from './db/data-dir-lock.js';
import { createLogger } from './logger.js';
import { handleProcessFaults } from './process-faults.js';
import { schedulePurge } from './purge.js';
import { shutDownOnSignals } from './shutdown.js';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  handleProcessFaults(logger);
  if (!config.rateLimits.enabled) {
    // On stderr as well as in the log, so that no LOG_LEVEL can hide it.
    const warning =
      'RATE_LIMITS=off: every rate limit and the account lockout are DISABLED. ' +
      'Use this for load tests and benchmarks only, never for a server facing users.';
    console.error(`\n*** WARNING: ${warning} ***\n`);
    logger.warn(warning);
  }
  const runtime = await bootstrap(config, logger, { schedule: true });
  // The first unknown-email login must cost what every later one costs (one verification).
  await runtime.services.passwords.prepareDummy();
  const { connect, statement } = config.databaseTimeouts;
  const app = createApp(runtime.services, {
    config,
    ping: runtime.database.ping,
    // PostgreSQL can be unreachable or silent; a request may wait to connect, then for a
    // statement, no longer. Embedded PGlite cannot be.
    requestDeadlineMs: runtime.database.kind === 'postgres' ? (connect + statement) * 1000 : undefined,
  });
  const stopPurge = schedulePurge(runtime.services, config.purgeInterval);
  const server = createServer(app);

  await new Promise<void>((resolve) => server.listen(config.port, config.host, resolve));
  logger.info(
    { database: runtime.database.kind, url: `http://${config.host}:${config.port}/graphql` },
    'authgraph is listening',
  );

  shutDownOnSignals(server, {
    logger,
    timeoutMs: config.shutdownTimeout * 1000,
    release: async () => {
      stopPurge();
      await runtime.close();
    },
  });
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof DataDirLockedError) {
    console.error(`authgraph cannot start: ${err.message}`);
  } else {
    console.error('authgraph failed to start:', err);
  }
  process.exit(1);
});
