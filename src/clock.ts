/** A source of the current time, injected so tests can freeze and advance it. */
export interface Clock {
  now(): Date;
  /**
   * Calls `fn` once, when this clock reaches `at` (at once, asynchronously, if it already has);
   * the returned function cancels it. Never keeps the process alive by itself.
   */
  setTimer(at: Date, fn: () => void): () => void;
}

/** setTimeout's longest delay: a longer one overflows and fires at once. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** The wall clock. */
export const systemClock: Clock = {
  now: () => new Date(),
  setTimer(at, fn) {
    let timer: NodeJS.Timeout;
    // A delay past setTimeout's range (about 24.8 days) waits in steps.
    const arm = () => {
      const left = at.getTime() - Date.now();
      timer = setTimeout(left > MAX_DELAY_MS ? arm : fn, Math.min(Math.max(left, 0), MAX_DELAY_MS));
      timer.unref();
    };
    arm();
    return () => clearTimeout(timer);
  },
};
