import type { Logger } from './logger.js';

/** The points of the start-up where a signal that has arrived stops it. */
export type StartupStage = 'open-database' | 'migrate' | 'mid-migration' | 'listen';

/** The start-up was stopped by SIGINT or SIGTERM before the server listened. */
export class StartupStoppedError extends Error {
  override name = 'StartupStoppedError';
  constructor(
    readonly signal: NodeJS.Signals,
    readonly stage: StartupStage,
  ) {
    super(`stopped by ${signal} during start-up (at ${stage})`);
  }
}

export interface StartupSignals {
  /**
   * Throws StartupStoppedError when a signal has arrived. With `pauseAt` naming this stage, it
   * first waits for one (a test's way to land a signal there).
   */
  checkpoint(stage: StartupStage): Promise<void>;
  /** Stops listening, for shutDownOnSignals to take over; returns the signal that arrived meanwhile, if any. */
  handOver(): NodeJS.Signals | null;
}

/**
 * Catches SIGINT and SIGTERM from the first moment of the start-up, so that Node's default (an
 * immediate exit, a stale PGlite lock, a PGlite closed mid-write) never applies. The start-up
 * goes on to its next checkpoint, which throws; what was opened is closed on the way out. A
 * migration is stopped between two migrations, inside their one transaction, so the run is
 * rolled back whole and the next start applies it again. Later signals are ignored, as during a
 * shutdown: the closing must not be skipped.
 */
export function watchStartupSignals(logger: Logger, pauseAt?: StartupStage): StartupSignals {
  let received: NodeJS.Signals | null = null;
  let arrived!: () => void;
  const arrival = new Promise<void>((resolve) => (arrived = resolve));
  const onSignal = (signal: NodeJS.Signals) => {
    if (received) {
      logger.info({ signal }, 'already stopping the start-up');
      return;
    }
    received = signal;
    logger.info({ signal }, 'signal during start-up: stopping at the next step');
    arrived();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    async checkpoint(stage) {
      if (stage === pauseAt && !received) {
        logger.info({ stage }, 'start-up paused until a signal (test hook)');
        // Nothing else may hold the event loop while waiting (an open PGlite does not).
        const keepAlive = setInterval(() => {}, 60_000);
        await arrival.finally(() => clearInterval(keepAlive));
      }
      if (received) throw new StartupStoppedError(received, stage);
    },
    handOver() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      return received;
    },
  };
}
