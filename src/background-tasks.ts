import type { Logger } from './logger.js';

/** Work that runs after a request has been answered, tracked so that shutdown (and tests) can wait for it. */
export interface BackgroundTasks {
  /** Starts `work` once the current request has had its turn; failures are logged, never thrown. */
  run(label: string, work: () => Promise<void>): void;
  /** Resolves when no task is running, including tasks started while waiting. */
  idle(): Promise<void>;
}

/** An in-process tracker of background tasks. */
export function createBackgroundTasks(logger: Logger): BackgroundTasks {
  const pending = new Set<Promise<void>>();
  return {
    run(label, work) {
      // setImmediate lets the answer of the request that scheduled the work go out first, so
      // its timing does not depend on what the work finds (e.g. whether an account exists).
      const task: Promise<void> = new Promise<void>((resolve) => setImmediate(resolve))
        .then(work)
        .catch((err: unknown) => logger.error({ err, task: label }, 'background task failed'))
        .finally(() => pending.delete(task));
      pending.add(task);
    },
    async idle() {
      while (pending.size > 0) await Promise.all(pending);
    },
  };
}
