import type { Server } from 'node:http';
import type { Logger } from './logger.js';

/** How long closing the database may take once the connections are gone (postgres.js waits 5 s at most). */
const RELEASE_TIMEOUT_MS = 10_000;

export interface ShutdownOptions {
  logger: Logger;
  /** How long requests in flight get to finish. */
  timeoutMs: number;
  /** Called once draining starts: ends the responses that would never finish on their own (event streams). */
  onDrain?: () => void;
  /** Runs once every connection is closed: stop background work, close the database. */
  release: () => Promise<void>;
}

/**
 * On SIGTERM or SIGINT: stop accepting connections, let the requests in flight finish (each
 * keep-alive connection is closed as soon as it is idle), then release and exit 0. Requests
 * still running after `timeoutMs` are cut; a second signal cuts them at once. Either way the
 * release still runs (the database is closed, PGlite's lock removed; bounded by
 * RELEASE_TIMEOUT_MS) and the process exits 1 if a request was cut, 0 otherwise. Signals come
 * in pairs: Ctrl-C on `npm start` reaches the server from the terminal and again forwarded by
 * npm. So later signals are ignored rather than skipping the release: an interrupted release
 * is what leaves a stale lock and a PGlite that must recover. Returns the handler, for a signal
 * that arrived before it was installed.
 */
export function shutDownOnSignals(server: Server, { logger, timeoutMs, release, onDrain }: ShutdownOptions): (signal: NodeJS.Signals) => void {
  let draining = false;
  let cutting = false;
  let inFlight = 0;
  let cutRequests = 0;
  server.on('request', (_request, response) => {
    inFlight += 1;
    // A response sent while draining tells its client not to reuse the connection, and each
    // finished response lets its connection go (server.close() only closes those idle at once).
    if (draining && !response.headersSent) response.setHeader('connection', 'close');
    response.once('close', () => {
      inFlight -= 1;
      if (draining) setImmediate(() => server.closeIdleConnections());
    });
  });

  /** Cuts every connection; server.close's callback then runs the release. */
  const cut = (why: string) => {
    cutting = true;
    cutRequests = inFlight;
    if (inFlight > 0) logger.warn({ requests: inFlight }, `${why}: cutting requests still in flight`);
    server.closeAllConnections();
  };

  const onSignal = (signal: NodeJS.Signals) => {
    if (cutting) {
      logger.info({ signal }, 'already shutting down: closing the database');
      return;
    }
    if (draining) {
      cut(`second signal (${signal})`);
      return;
    }
    draining = true;
    logger.info({ signal, timeoutMs }, 'shutting down');
    const force = setTimeout(() => cut('shutdown timeout'), timeoutMs);
    onDrain?.();
    server.close(() => {
      clearTimeout(force);
      const bound = setTimeout(() => {
        logger.error({ timeoutMs: RELEASE_TIMEOUT_MS }, 'closing the database took too long: exiting');
        process.exit(1);
      }, RELEASE_TIMEOUT_MS);
      bound.unref();
      release().then(
        () => {
          logger.info({ cutRequests }, 'shut down');
          process.exit(cutRequests > 0 ? 1 : 0);
        },
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return onSignal;
}
