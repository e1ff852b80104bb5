import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Logger } from './logger.js';

/** How long closing the database may take once the connections are gone (postgres.js waits 5 s at most). */
const RELEASE_TIMEOUT_MS = 10_000;

/**
 * Counts the request handlers running. A request's work goes on after its client hung up (its
 * response closed, its connection gone), and the database must outlive that work: the release
 * waits for idle().
 */
export function trackHandlers(handler: (request: IncomingMessage, response: ServerResponse) => unknown) {
  let running = 0;
  let waiting: (() => void)[] = [];
  const finished = () => {
    running -= 1;
    if (running === 0) for (const resolve of waiting.splice(0)) resolve();
  };
  return {
    listener: (request: IncomingMessage, response: ServerResponse) => {
      running += 1;
      // A handler that throws or rejects is finished too; its error stays unhandled, so the
      // process-fault handlers report it as they did before handlers were counted.
      void Promise.resolve()
        .then(() => handler(request, response))
        .finally(finished);
    },
    running: () => running,
    /** Resolves once no handler runs. */
    idle: () => (running === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiting.push(resolve))),
  };
}

export type Handlers = ReturnType<typeof trackHandlers>;

export interface ShutdownOptions {
  logger: Logger;
  /** How long requests in flight get to finish. */
  timeoutMs: number;
  /** Called once draining starts: ends the responses that would never finish on their own (event streams). */
  onDrain?: () => void;
  /** The app's request handlers: the release waits until none runs (unless requests are cut). */
  handlers: Handlers;
  /** Runs once every connection is closed and every handler finished: stop background work, close the database. */
  release: () => Promise<void>;
}

/**
 * On SIGTERM or SIGINT: stop accepting connections, let the requests in flight finish (each
 * keep-alive connection is closed as soon as it is idle, and the work of a request whose client
 * hung up is waited for too), then release and exit 0. Requests
 * still running after `timeoutMs` are cut; a second signal cuts them at once. Either way the
 * release still runs (the database is closed, PGlite's lock removed; bounded by
 * RELEASE_TIMEOUT_MS) and the process exits 1 if a request was cut, 0 otherwise. Signals come
 * in pairs: Ctrl-C on `npm start` reaches the server from the terminal and again forwarded by
 * npm. So later signals are ignored rather than skipping the release: an interrupted release
 * is what leaves a stale lock and a PGlite that must recover. Returns the handler, for a signal
 * that arrived before it was installed.
 */
export function shutDownOnSignals(server: Server, { logger, timeoutMs, release, onDrain, handlers }: ShutdownOptions): (signal: NodeJS.Signals) => void {
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

  let stopWaiting = () => {};
  const cutNow = new Promise<void>((resolve) => (stopWaiting = resolve));

  /** Cuts every connection, and stops waiting for handlers; server.close's callback then runs the release. */
  const cut = (why: string) => {
    cutting = true;
    cutRequests = Math.max(inFlight, handlers.running());
    if (cutRequests > 0) logger.warn({ requests: cutRequests }, `${why}: cutting requests still in flight`);
    stopWaiting();
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
    server.close(async () => {
      // Connections are gone; work whose client hung up may still run (until the timeout cuts it).
      await Promise.race([handlers.idle(), cutNow]);
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
