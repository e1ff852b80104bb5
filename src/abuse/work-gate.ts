import { RateLimitedError } from '../errors.js';

export interface WorkGateOptions {
  /** Jobs running at once. */
  maxConcurrency: number;
  /** Jobs allowed to wait; beyond that a job is refused at once. */
  queueLimit: number;
  /** How long a job may wait for a slot before it is refused. */
  queueTimeoutMs: number;
  /** Told, as each job starts, how many seconds it waited for its slot (0 when one was free). */
  onWait?: ((seconds: number) => void) | undefined;
  /** Told of each job refused (queue full, or waited too long). */
  onRefused?: (() => void) | undefined;
}

/**
 * Bounds CPU- and memory-heavy work (argon2): at most `maxConcurrency` jobs run, a bounded
 * number wait briefly, and the rest are refused with RateLimitedError instead of piling up.
 */
export class WorkGate {
  private running = 0;
  private readonly waiting: Array<{ start: () => void; timer: NodeJS.Timeout }> = [];

  constructor(private readonly options: WorkGateOptions) {}

  /** Jobs waiting for a slot now. */
  get queueLength(): number {
    return this.waiting.length;
  }

  async run<T>(job: () => Promise<T>): Promise<T> {
    let waited = 0;
    if (this.running >= this.options.maxConcurrency) {
      const queuedAt = performance.now();
      await this.waitForSlot();
      waited = (performance.now() - queuedAt) / 1000;
    } else {
      this.running += 1;
    }
    try {
      // Inside the try: the slot is passed on even if the callback throws.
      this.options.onWait?.(waited);
      return await job();
    } finally {
      const next = this.waiting.shift();
      if (next) {
        clearTimeout(next.timer);
        next.start(); // the slot passes straight to the next job
      } else {
        this.running -= 1;
      }
    }
  }

  private refuse(): RateLimitedError {
    this.options.onRefused?.();
    return new RateLimitedError(1, 'busy');
  }

  private waitForSlot(): Promise<void> {
    if (this.waiting.length >= this.options.queueLimit) {
      return Promise.reject(this.refuse());
    }
    return new Promise<void>((resolve, reject) => {
      const entry = {
        start: resolve,
        timer: setTimeout(() => {
          this.waiting.splice(this.waiting.indexOf(entry), 1);
          reject(this.refuse());
        }, this.options.queueTimeoutMs),
      };
      this.waiting.push(entry);
    });
  }
}
