import { createYoga, useReadinessCheck } from 'graphql-yoga';
import { createContextFactory, type AppServices } from './context.js';
import { schema } from './graphql/schema.js';
import type { ServerContext } from './request-info.js';

export interface AppOptions {
  /** Answers /ready: resolves when the database answers a query. */
  ping: () => Promise<void>;
  graphiql: boolean;
}

/** The yoga app; tests call `app.fetch()` directly, server.ts puts it on a port. */
export function createApp(services: AppServices, options: AppOptions) {
  const { logger } = services;
  return createYoga<ServerContext>({
    schema,
    context: createContextFactory(services),
    graphqlEndpoint: '/graphql',
    healthCheckEndpoint: '/health',
    graphiql: options.graphiql,
    landingPage: false,
    // Unexpected errors reach the client as "Unexpected error."; the details go to the log only.
    maskedErrors: true,
    logging: {
      debug: (...args) => logger.debug(args.map(String).join(' ')),
      info: (...args) => logger.info(args.map(String).join(' ')),
      warn: (...args) => logger.warn(args.map(String).join(' ')),
      error: (...args) => {
        const err = args.find((a): a is Error => a instanceof Error);
        logger.error({ err }, args.filter((a) => typeof a === 'string').join(' ') || 'request failed');
      },
    },
    plugins: [
      useReadinessCheck({
        endpoint: '/ready',
        check: async () => {
          try {
            await options.ping();
            return true;
          } catch (err) {
            logger.warn({ err }, 'readiness check failed: database unreachable');
            return false;
          }
        },
      }),
    ],
  });
}

export type App = ReturnType<typeof createApp>;
