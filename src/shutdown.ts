import type { Server } from 'node:http';
import type { Logger } from './logger.js';

export interface ShutdownOptions {
  logger: Logger;
  /** How long requests in flight get to finish. */
  timeoutMs: number;
  /** Runs once every connection is closed: stop background work, close the database. */
  release: () => Promise<void>;
}

/**
 * On SIGTERM or SIGINT: stop accepting connections, let the requests in flight finish (each
 * keep-alive connection is closed as soon as it is idle), then release and exit 0. Requests
 * still running after `timeoutMs` are cut and the process exits 1; a second signal does the
 * same at once.
 */
export function shutDownOnSignals(server: Server, { logger, timeoutMs, release }: ShutdownOptions): void {
  let draining = false;
  server.on('request', (_request, response) => {
    // A response sent while draining tells its client not to reuse the connection, and each
    // finished response lets its connection go (server.close() only closes those idle at once).
    if (draining && !response.headersSent) response.setHeader('connection', 'close');
    response.once('close', () => {
      if (draining) setImmediate(() => server.closeIdleConnections());
    });
  });

  const onSignal = (signal: NodeJS.Signals) => {
    if (draining) {
      logger.warn({ signal }, 'second signal: exiting now, cutting requests in flight');
      process.exit(1);
    }
    draining = true;
    logger.info({ signal, timeoutMs }, 'shutting down');
    const force = setTimeout(() => {
      logger.warn({ timeoutMs }, 'shutdown timeout: cutting requests still in flight');
      server.closeAllConnections();
      process.exit(1);
    }, timeoutMs);
    server.close(() => {
      clearTimeout(force);
      release().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
