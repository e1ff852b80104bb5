import { setTimeout as delay } from 'node:timers/promises';
import { loadSigningKeys } from './tokens/signing-keys.js';
import { systemClock, type Clock } from './clock.js';
import type { Config } from './config.js';
import type { AppServices } from './services.js';
import { openDatabase, type DatabaseHandle } from './db/client.js';
import type { Logger } from './logger.js';
import { createServices } from './services.js';

export interface Runtime {
  config: Config;
  database: DatabaseHandle;
  services: AppServices;
  close(): Promise<void>;
}

const TASKS_GRACE_MS = 5000;

/** Opens the configured database, applies migrations, imports keys and wires the services. */
export async function bootstrap(config: Config, logger: Logger, clock: Clock = systemClock): Promise<Runtime> {
  // Keys first: a bad key fails start-up before any database work.
  const keys = await loadSigningKeys(config, logger);
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    timeouts: config.databaseTimeouts,
  });
  let services: AppServices;
  try {
    await database.migrate();
    // Also refuses a configuration it cannot work with (production without SMTP_URL).
    services = createServices({ config, db: database.db, keys, clock, logger });
  } catch (err) {
    await database.close();
    throw err;
  }
  const close = async () => {
    // Mails still being sent need the database for their audit events: give them a moment
    // (bounded, so an SMTP server that hangs cannot hold up a shutdown).
    await Promise.race([services.tasks.idle(), delay(TASKS_GRACE_MS, undefined, { ref: false })]);
    await database.close();
  };
  return { config, database, services, close };
}
