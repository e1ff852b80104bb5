import { createApp, type App } from '../../src/app.js';
import { openSigningKeys } from '../../src/tokens/signing-keys.js';
import { loadConfig, type Config } from '../../src/config.js';
import type { AppServices } from '../../src/services.js';
import type { DatabaseHandle } from '../../src/db/client.js';
import { createLogger } from '../../src/logger.js';
import { createServices } from '../../src/services.js';
import { TestClock } from './clock.js';
import { openTestDatabase } from './database.js';

/** The signing secret of test apps, so tests can mint tokens as an attacker who stole it would. */
export const TEST_JWT_SECRET = 'test-secret-test-secret-test-secret-0123456789';
/** The key-encryption key of test apps (a test value, not a secret of any deployment). */
export const TEST_KEY_ENCRYPTION_KEY = Buffer.alloc(32, 7).toString('base64');

export interface GraphQLResponse<T = Record<string, any>> {
  status: number;
  data?: T | null;
  errors?: { message: string; path?: string[]; extensions?: { code?: string } }[];
}

export interface RequestOptions {
  token?: string;
  ip?: string;
  headers?: Record<string, string>;
}

export interface TestApp {
  app: App;
  services: AppServices;
  config: Config;
  clock: TestClock;
  database: DatabaseHandle;
  /** Runs one GraphQL operation through yoga.fetch, as a client would send it. */
  gql<T = Record<string, any>>(query: string, variables?: Record<string, unknown>, options?: RequestOptions): Promise<GraphQLResponse<T>>;
  close(): Promise<void>;
}

/**
 * A full app on a fresh database, with a frozen clock. `env` overrides configuration. Rate
 * limits are off unless a test turns them on (RATE_LIMITS: 'on'): most tests sign in far more
 * often from one address than a client ever should.
 */
export async function createTestApp(env: Record<string, string> = {}, database?: DatabaseHandle): Promise<TestApp> {
  const config = loadConfig({
    JWT_SECRET: TEST_JWT_SECRET,
    KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    RATE_LIMITS: 'off',
    // A hash that waits longer than this (real time) for an argon2 slot is refused; the 2 s
    // default can pass while a test's concurrent sign-ups queue on a loaded machine. Tests of
    // that refusal bound the queue themselves (ARGON2_QUEUE_LIMIT: '0').
    ARGON2_QUEUE_TIMEOUT_MS: '30000',
    ...env,
  });
  const logger = createLogger(config.logLevel);
  const clock = new TestClock();
  const db = database ?? (await openTestDatabase());
  const keys = await openSigningKeys({ config, logger, database: db, clock, schedule: false });
  const services = createServices({ config, database: db, keys, clock, logger });
  await services.changes.start();
  const app = createApp(services, { config, ping: db.ping });
  return {
    app,
    services,
    config,
    clock,
    database: db,
    async gql(query, variables, options = {}) {
      const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
      if (options.token) headers.authorization = `Bearer ${options.token}`;
      const response = await app.fetch(
        'http://authgraph.test/graphql',
        { method: 'POST', headers, body: JSON.stringify({ query, variables }) },
        { req: { socket: { remoteAddress: options.ip ?? '127.0.0.1' } } },
      );
      return { status: response.status, ...(await response.json()) };
    },
    close: async () => {
      await services.changes.close();
      await keys.close();
      if (!database) await db.close();
    },
  };
}
