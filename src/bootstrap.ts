import { loadSigningKeys } from './auth/signing-keys.js';
import { systemClock, type Clock } from './clock.js';
import type { Config } from './config.js';
import type { AppServices } from './context.js';
import { openDatabase, type DatabaseHandle } from './db/client.js';
import type { Logger } from './logger.js';
import { createServices } from './services.js';

export interface Runtime {
  config: Config;
  database: DatabaseHandle;
  services: AppServices;
  close(): Promise<void>;
}

/** Opens the configured database, applies migrations, imports keys and wires the services. */
export async function bootstrap(config: Config, logger: Logger, clock: Clock = systemClock): Promise<Runtime> {
  // Keys first: a bad key fails start-up before any database work.
  const keys = await loadSigningKeys(config, logger);
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    await database.migrate();
  } catch (err) {
    await database.close();
    throw err;
  }
  const services = createServices({ config, db: database.db, keys, clock, logger });
  return { config, database, services, close: () => database.close() };
}
