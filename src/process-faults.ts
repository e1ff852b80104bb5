import { isDatabaseOutage } from './db/outage.js';
import type { Logger } from './logger.js';

/**
 * postgres.js 3.4.9 writing to a socket that has just closed (porsager/postgres #1154, #1208),
 * thrown from a setImmediate callback. scripts/patch-postgres.mjs prevents it; this matches it
 * in case the patch is missing (an install run with --ignore-scripts).
 */
function isClosedSocketWrite(err: unknown): boolean {
  return (
    err instanceof TypeError &&
    err.message === "Cannot read properties of null (reading 'write')" &&
    /\bnextWrite \(\S*[\\/]postgres[\\/](cjs[\\/])?src[\\/]connection\.js:/.test(err.stack ?? '')
  );
}

/**
 * The last resort for errors nothing caught. Known harmless driver faults are logged and the
 * server goes on serving: a lost database connection's error surfacing from a promise the driver
 * dropped (the driver has already failed the queries concerned, and reconnects when asked), and
 * the closed-socket write above. Anything else is a bug whose effects are unknown: it is logged
 * and the process exits with code 1, for its supervisor to restart it.
 */
export function handleProcessFaults(logger: Logger): void {
  process.on('unhandledRejection', (reason) => {
    if (isDatabaseOutage(reason)) {
      logger.warn({ err: reason }, 'a database connection failed outside any request; serving on');
      return;
    }
    logger.fatal({ err: reason }, 'unhandled promise rejection: exiting');
    process.exit(1);
  });
  process.on('uncaughtException', (err) => {
    if (isClosedSocketWrite(err)) {
      logger.error({ err }, 'postgres.js wrote to a closed connection (is scripts/patch-postgres.mjs applied?); serving on');
      return;
    }
    logger.fatal({ err }, 'uncaught exception: exiting');
    process.exit(1);
  });
}
