/** Signing keys opened from a configuration as bootstrap does, for unit tests of keys and tokens. */
import { systemClock } from '../../src/clock.js';
import type { Config } from '../../src/config.js';
import type { DatabaseHandle } from '../../src/db/client.js';
import type { Logger } from '../../src/logger.js';
import { openSigningKeys, type SigningKeys } from '../../src/tokens/signing-keys.js';
import { openTestDatabase } from './database.js';

/**
 * Opens the keys of `config`. Symmetric keys need no database; the stored key set (RS*, ES256,
 * EdDSA) uses `database`, or one of its own that closes with the keys.
 */
export async function openKeys(config: Config, logger: Logger, database?: DatabaseHandle): Promise<SigningKeys> {
  if (config.jwt.algorithm.startsWith('HS')) {
    return openSigningKeys({ config, logger, database: database as DatabaseHandle, clock: systemClock, schedule: false });
  }
  const own = database ? null : await openTestDatabase();
  try {
    const keys = await openSigningKeys({ config, logger, database: (database ?? own)!, clock: systemClock, schedule: false });
    return { ...keys, close: async () => (await keys.close(), await own?.close()) };
  } catch (err) {
    await own?.close();
    throw err;
  }
}
