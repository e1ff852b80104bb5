import type { RateLimit } from '../config.js';

/**
 * The account-lockout rule, as pure functions of one email's stored state and the time (in
 * milliseconds). Two guarantees hold together:
 *  - a cap: at most `failures.count` failures in ANY `failures.seconds`-long span (a sliding
 *    log of the latest failures, so a window boundary never doubles it);
 *  - escalation: the failure that fills the cap locks the email for `baseSeconds`; while the
 *    streak lasts, each further failure locks again for twice as long, up to `maxSeconds`.
 * A streak ends with a successful sign-in, or after a quiet spell of `failures.seconds +
 * maxSeconds` without a failure, so no lockout is ever permanent.
 */
export interface LockoutPolicy {
  failures: RateLimit;
  baseSeconds: number;
  maxSeconds: number;
}

export interface LockoutState {
  /** Times of the latest failures, oldest first; never more than `failures.count` of them. */
  failureTimes: number[];
  /** Lockouts in the current streak; the next one lasts `baseSeconds × 2^level`, capped. */
  level: number;
  lockedUntil: number | null;
}

export const EMPTY_LOCKOUT: LockoutState = { failureTimes: [], level: 0, lockedUntil: null };

/** An attempt let through: the state with it counted as a failure, and the lock it set if any. */
export interface Admission {
  next: LockoutState;
  /** The lock this attempt set (it holds whatever the password turns out to be, unless it is right). */
  lockedUntil: number | null;
}

/** Lockout length for a level, in seconds. */
export const lockSeconds = (policy: LockoutPolicy, level: number) =>
  Math.min(policy.baseSeconds * 2 ** level, policy.maxSeconds);

const windowMs = (policy: LockoutPolicy) => policy.failures.seconds * 1000;
/** How long an email must go without a failure before its streak is forgotten, in ms. */
export const quietSpellMs = (policy: LockoutPolicy) => (policy.failures.seconds + policy.maxSeconds) * 1000;

/** The state as it stands at `now`: failures outside the window dropped, the streak forgotten after a quiet spell. */
function current(state: LockoutState, now: number, policy: LockoutPolicy): LockoutState {
  const last = state.failureTimes.at(-1);
  const quiet = last === undefined || now - last >= quietSpellMs(policy);
  const lockInForce = state.lockedUntil !== null && state.lockedUntil > now;
  return {
    failureTimes: state.failureTimes.filter((t) => t > now - windowMs(policy)),
    level: quiet && !lockInForce ? 0 : state.level,
    lockedUntil: lockInForce ? state.lockedUntil : null,
  };
}

/** When the email may next try a password, or null when it may now. */
export function blockedUntil(state: LockoutState, now: number, policy: LockoutPolicy): number | null {
  const { failureTimes, lockedUntil } = current(state, now, policy);
  const { count } = policy.failures;
  const capEnd = failureTimes.length >= count ? failureTimes[failureTimes.length - count]! + windowMs(policy) : null;
  const until = Math.max(lockedUntil ?? 0, capEnd ?? 0);
  return until > now ? until : null;
}

/**
 * Counts an attempt as a failure BEFORE its password is checked, and sets the lock it would
 * earn, so that attempts running at the same time see it; a right password then clears it all.
 * Returns null when the email is blocked.
 */
export function admitAttempt(state: LockoutState, now: number, policy: LockoutPolicy): Admission | null {
  if (blockedUntil(state, now, policy) !== null) return null;
  const { failureTimes, level } = current(state, now, policy);
  const times = [...failureTimes, now].sort((a, b) => a - b).slice(-policy.failures.count);
  const locks = level > 0 || times.length >= policy.failures.count;
  if (!locks) return { next: { failureTimes: times, level, lockedUntil: null }, lockedUntil: null };
  const lockedUntil = now + lockSeconds(policy, level) * 1000;
  return { next: { failureTimes: times, level: level + 1, lockedUntil }, lockedUntil };
}

/** Takes back an admitted attempt that ended without a verdict on its password (e.g. overload). */
export function withdrawAttempt(state: LockoutState, attempt: { at: number; admission: Admission; before: LockoutState }): LockoutState {
  // While the lock this attempt set holds, no other attempt was admitted: the state it found
  // comes back whole (its failure log too, which an emptied log would read as a quiet spell).
  const ownLock = attempt.admission.lockedUntil !== null && state.lockedUntil === attempt.admission.lockedUntil;
  if (ownLock) return attempt.before;
  const index = state.failureTimes.indexOf(attempt.at);
  return { ...state, failureTimes: state.failureTimes.filter((_, i) => i !== index) };
}
