/**
 * Time arithmetic, written once. Where a duration is rounded to whole seconds the name says which
 * way, because the two directions serve opposite promises: a lifetime told to a client must not
 * overstate what is left (round down), a wait must not end early nor read 0 (round up).
 */

const MS_PER_SECOND = 1000;

/** `date` moved by a number of seconds (negative: earlier). */
export function addSeconds(date: Date, seconds: number): Date {
  return new Date(date.getTime() + seconds * MS_PER_SECOND);
}

/** Whole seconds since the Unix epoch, rounded down: a JWT NumericDate (`iat`, `exp`). */
export function epochSeconds(date: Date): number {
  return Math.floor(date.getTime() / MS_PER_SECOND);
}

/** The instant of a whole-second epoch time (a JWT's `exp`). */
export function fromEpochSeconds(seconds: number): Date {
  return new Date(seconds * MS_PER_SECOND);
}

/** Whole seconds left until `until`, rounded down and never negative: a token's `expiresIn`. */
export function wholeSecondsLeft(until: Date, now: Date): number {
  return Math.max(0, Math.floor((until.getTime() - now.getTime()) / MS_PER_SECOND));
}

/**
 * Seconds a client must wait until `until`, rounded up and at least 1: a retry at `now + n` is
 * never early, and a `retryAfter` of 0 would invite an immediate retry.
 */
export function retryAfterSeconds(until: Date, now: Date): number {
  return Math.max(1, Math.ceil((until.getTime() - now.getTime()) / MS_PER_SECOND));
}
