import { setTimeout as delay } from 'node:timers/promises';
import { prepareSigningKeys, type SigningKeys } from './tokens/signing-keys.js';
import { systemClock, type Clock } from './clock.js';
import type { Config } from './config.js';
import type { AppServices } from './services.js';
import { openDatabase, type DatabaseHandle } from './db/client.js';
import type { Logger } from './logger.js';
import { createServices } from './services.js';
import type { StartupStage } from './startup-signals.js';

export interface Runtime {
  config: Config;
  database: DatabaseHandle;
  services: AppServices;
  close(): Promise<void>;
}

const TASKS_GRACE_MS = 5000;

/** Opens the configured database, applies migrations, imports keys and wires the services. */
export async function bootstrap(
  config: Config,
  logger: Logger,
  options: {
    clock?: Clock;
    schedule?: boolean;
    manageKeys?: boolean;
    /** Throws to stop the start-up (a signal arrived); whatever was opened is closed. */
    checkpoint?: (stage: StartupStage) => Promise<void>;
  } = {},
): Promise<Runtime> {
  const { clock = systemClock, schedule = false, manageKeys = true, checkpoint = async () => {} } = options;
  // What the environment gives for keys first: a bad key fails start-up before any database work.
  const openKeys = await prepareSigningKeys(config, logger);
  await checkpoint('open-database');
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    listenUrl: config.databaseListenUrl,
    dataDir: config.dataDir,
    timeouts: config.databaseTimeouts,
    preparedStatements: config.databasePreparedStatements,
  });
  let services: AppServices | undefined;
  let keys: SigningKeys | undefined;
  try {
    await checkpoint('migrate');
    // A stop between two migrations rolls back all of this run's: none is ever half applied.
    await database.migrate({ afterEach: () => checkpoint('mid-migration') });
    // Refuses keys it cannot use (a bad JWT_PRIVATE_KEY, a wrong KEY_ENCRYPTION_KEY).
    keys = await openKeys({ database, clock, schedule, manage: manageKeys });
    // Also refuses a configuration it cannot work with (production without SMTP_URL).
    services = createServices({ config, database, keys, clock, logger });
    // Until its first reload this instance answers from the database.
    await services.changes.start();
  } catch (err) {
    await services?.changes.close();
    await keys?.close();
    await database.close();
    throw err;
  }
  const running = services;
  const close = async () => {
    // Mails still being sent need the database for their audit events: give them a moment
    // (bounded, so an SMTP server that hangs cannot hold up a shutdown).
    await Promise.race([running.tasks.idle(), delay(TASKS_GRACE_MS, undefined, { ref: false })]);
    await running.signingKeys.close();
    await running.changes.close();
    await database.close();
  };
  return { config, database, services: running, close };
}
