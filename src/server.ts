import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from './app.js';
import { bootstrap } from './bootstrap.js';
import { ConfigError, loadConfig } from './config.js';
import { DataDirLockedError } from './db/data-dir-lock.js';
import { createLogger } from './logger.js';
import { handleProcessFaults } from './process-faults.js';
import { schedulePurge } from './purge.js';
import { shutDownOnSignals, trackHandlers, type Handlers } from './shutdown.js';
import { StartupStoppedError, watchStartupSignals } from './startup-signals.js';

/** The server could not listen on HOST:PORT; the message says why and what to change. */
class ListenError extends Error {
  override name = 'ListenError';
}

/** What to tell an operator whose server cannot listen, by the system's error code. */
function listenFailure(err: NodeJS.ErrnoException, host: string, port: number): ListenError {
  const where = `${host}:${port}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return new ListenError(`${where} is already in use (EADDRINUSE): stop the process listening there, or set PORT to a free port.`);
    case 'EACCES':
      return new ListenError(`not allowed to listen on ${where} (EACCES): ports below 1024 need privileges; set PORT to 1024 or above.`);
    case 'EADDRNOTAVAIL':
      return new ListenError(`HOST ${host} is not an address of this machine (EADDRNOTAVAIL): set HOST to one of its addresses, or 0.0.0.0 for all.`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ListenError(`HOST ${host} does not resolve (${err.code}): set HOST to an address or a known name.`);
    default:
      return new ListenError(`cannot listen on ${where} (${err.code ?? err.message}).`);
  }
}

/** Listens on host:port; a failure (a busy port, an unknown address) rejects, as a ListenError. */
function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const fail = (err: NodeJS.ErrnoException) => reject(listenFailure(err, host, port));
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** The address a browser on this machine opens: a wildcard HOST is reached as localhost. */
function browsableUrl(host: string, port: number): string {
  const name = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return `http://${name}:${port}/graphql`;
}

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  handleProcessFaults(logger);
  // From here to listening, a signal stops the start-up at its next step, closing what was opened.
  const startup = watchStartupSignals(logger, config.startupPause);
  if (!config.rateLimits.enabled) {
    // On stderr as well as in the log, so that no LOG_LEVEL can hide it.
    const warning =
      'RATE_LIMITS=off: every rate limit and the account lockout are DISABLED. ' +
      'Use this for load tests and benchmarks only, never for a server facing users.';
    console.error(`\n*** WARNING: ${warning} ***\n`);
    logger.warn(warning);
  }
  const runtime = await bootstrap(config, logger, { schedule: true, checkpoint: startup.checkpoint });
  let stopPurge = () => {};
  let server: Server;
  let handlers: Handlers;
  let address: AddressInfo;
  try {
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
    stopPurge = schedulePurge(runtime.services, config.purgeInterval);
    handlers = trackHandlers(app);
    runtime.services.metrics.watchRequestsInFlight(handlers.running);
    server = createServer(handlers.listener);
    await startup.checkpoint('listen');
    address = await listen(server, config.host, config.port);
  } catch (err) {
    // Nothing was served: release the database (and PGlite's lock) before saying why.
    stopPurge();
    await runtime.close().catch((closeErr: unknown) => logger.error({ err: closeErr }, 'closing the database failed'));
    throw err;
  }
  logger.info(
    { database: runtime.database.kind, url: `http://${config.host}:${config.port}/graphql` },
    'authgraph is listening',
  );
  // For the person who ran `npm start`: one line to read, on stderr so stdout stays JSON only.
  const url = browsableUrl(config.host, address.port);
  console.error(`authgraph listening on ${url}${config.graphiql ? ' — GraphiQL in your browser' : ''}`);

  const pending = startup.handOver();
  const stop = shutDownOnSignals(server, {
    logger,
    timeoutMs: config.shutdownTimeout * 1000,
    // A viewerEvents stream never finishes by itself: it ends, and its client subscribes elsewhere;
    // one arriving later (on a connection already open) is refused, so none can hold the drain.
    onDrain: () => runtime.services.viewerEvents.close(),
    handlers,
    release: async () => {
      stopPurge();
      await runtime.close();
    },
  });
  // A signal that came while the port was being opened: shut down now.
  if (pending) stop(pending);
}

main().catch((err: unknown) => {
  if (err instanceof StartupStoppedError) {
    // Asked to stop, and stopped in order (database closed, PGlite's lock removed): exit 0.
    console.error(`authgraph ${err.message}; nothing was served.`);
    process.exit(0);
  }
  if (err instanceof ConfigError || err instanceof DataDirLockedError || err instanceof ListenError) {
    console.error(`authgraph cannot start: ${err.message}`);
  } else {
    console.error('authgraph failed to start:', err);
  }
  process.exit(1);
});
