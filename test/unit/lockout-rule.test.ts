/**
 * The account-lockout rule (src/abuse/lockout-rule.ts) as pure functions of one email's state
 * and the time in milliseconds: the cap (at most `count` failures in any `seconds`-long span),
 * the escalation (LOCKOUT_BASE doubling up to LOCKOUT_MAX while a streak lasts), the quiet
 * spell that ends a streak, and the withdrawal of an attempt that got no verdict.
 */
import { describe, expect, it } from 'vitest';
import {
  admitAttempt,
  blockedUntil,
  EMPTY_LOCKOUT,
  lockSeconds,
  quietSpellMs,
  withdrawAttempt,
  type Admission,
  type LockoutPolicy,
  type LockoutState,
} from '../../src/abuse/lockout-rule.js';

/** RATE_LIMIT_LOGIN_ACCOUNT=5/900, LOCKOUT_BASE=60, LOCKOUT_MAX=900. */
const DEFAULTS: LockoutPolicy = { failures: { count: 5, seconds: 900 }, baseSeconds: 60, maxSeconds: 900 };
/** Every failure locks: 1/5, base 10, max 25. */
const ONE: LockoutPolicy = { failures: { count: 1, seconds: 5 }, baseSeconds: 10, maxSeconds: 25 };
/** 3/60, base 7, max 100. */
const THREE: LockoutPolicy = { failures: { count: 3, seconds: 60 }, baseSeconds: 7, maxSeconds: 100 };

const S = 1000;
/** An arbitrary start instant, far from 0 so that no arithmetic leans on it. */
const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);

/** What a client is told: the seconds to wait, rounded up, at least 1; 0 when it may try now. */
function waitSeconds(state: LockoutState, now: number, policy: LockoutPolicy): number {
  const until = blockedUntil(state, now, policy);
  return until === null ? 0 : Math.max(1, Math.ceil((until - now) / S));
}

/** Admits an attempt that must be let through, and keeps it as a failure (a wrong password). */
function fail(state: LockoutState, now: number, policy: LockoutPolicy): LockoutState {
  const admission = admitAttempt(state, now, policy);
  if (admission === null) throw new Error(`attempt at +${(now - T0) / S} s refused; blocked until +${(blockedUntil(state, now, policy)! - T0) / S} s`);
  return admission.next;
}

/** `n` wrong passwords at one instant. */
function failMany(state: LockoutState, n: number, now: number, policy: LockoutPolicy): LockoutState {
  for (let i = 0; i < n; i++) state = fail(state, now, policy);
  return state;
}

/** Deep-freezes a state, so that any mutation by the rule throws. */
function frozen(state: LockoutState): LockoutState {
  return Object.freeze({ ...state, failureTimes: Object.freeze([...state.failureTimes]) as number[] });
}

describe('lockSeconds and quietSpellMs', () => {
  it('doubles the lock from LOCKOUT_BASE with each level, capped at LOCKOUT_MAX', () => {
    expect([0, 1, 2, 3, 4, 5, 10].map((level) => lockSeconds(DEFAULTS, level))).toEqual([60, 120, 240, 480, 900, 900, 900]);
    expect([0, 1, 2, 3].map((level) => lockSeconds(ONE, level))).toEqual([10, 20, 25, 25]);
    expect([0, 1, 2, 3, 4, 5].map((level) => lockSeconds(THREE, level))).toEqual([7, 14, 28, 56, 100, 100]);
  });

  it('makes the quiet spell that ends a streak the window plus LOCKOUT_MAX, in milliseconds', () => {
    expect(quietSpellMs(DEFAULTS)).toBe(1800 * S);
    expect(quietSpellMs(ONE)).toBe(30 * S);
    expect(quietSpellMs(THREE)).toBe(160 * S);
  });
});

describe('the cap: at most `count` failures in any `seconds`-long span', () => {
  it('lets an email with no failures try at once', () => {
    expect(EMPTY_LOCKOUT).toEqual({ failureTimes: [], level: 0, lockedUntil: null });
    expect(blockedUntil(EMPTY_LOCKOUT, T0, DEFAULTS)).toBeNull();
    expect(admitAttempt(EMPTY_LOCKOUT, T0, DEFAULTS)).toEqual({
      next: { failureTimes: [T0], level: 0, lockedUntil: null },
      lockedUntil: null,
    });
  });

  it('lets 4 rapid failures through without a lock at the defaults', () => {
    let state: LockoutState = EMPTY_LOCKOUT;
    for (let i = 0; i < 4; i++) {
      const admission = admitAttempt(state, T0, DEFAULTS)!;
      expect(admission.lockedUntil, `failure ${i + 1}`).toBeNull();
      state = admission.next;
    }
    expect(state).toEqual({ failureTimes: [T0, T0, T0, T0], level: 0, lockedUntil: null });
    expect(blockedUntil(state, T0, DEFAULTS)).toBeNull();
  });

  it('the failure that fills the cap locks for LOCKOUT_BASE (60 s), but the email waits until the oldest failure leaves the window (900 s)', () => {
    const state = failMany(EMPTY_LOCKOUT, 4, T0, DEFAULTS);
    const fifth = admitAttempt(state, T0, DEFAULTS)!;
    expect(fifth.lockedUntil).toBe(T0 + 60 * S);
    expect(fifth.next).toEqual({ failureTimes: Array(5).fill(T0), level: 1, lockedUntil: T0 + 60 * S });
    expect(blockedUntil(fifth.next, T0, DEFAULTS)).toBe(T0 + 900 * S);
    expect(waitSeconds(fifth.next, T0, DEFAULTS)).toBe(900);
  });

  it('refuses every attempt while blocked, and counts down to the exact instant the block ends', () => {
    const state = failMany(EMPTY_LOCKOUT, 5, T0, DEFAULTS);
    for (const at of [0, 1, 59 * S, 60 * S, 61 * S, 600 * S, 900 * S - 1]) {
      expect(admitAttempt(state, T0 + at, DEFAULTS), `at +${at} ms`).toBeNull();
      expect(blockedUntil(state, T0 + at, DEFAULTS), `at +${at} ms`).toBe(T0 + 900 * S);
    }
    expect(waitSeconds(state, T0 + 600 * S, DEFAULTS)).toBe(300);
    expect(waitSeconds(state, T0 + 900 * S - 1, DEFAULTS)).toBe(1); // rounded up, never 0
    expect(blockedUntil(state, T0 + 900 * S, DEFAULTS)).toBeNull();
    expect(admitAttempt(state, T0 + 900 * S, DEFAULTS)).not.toBeNull();
  });

  it('caps a spread schedule too: 4 failures at t=0 and the 5th at 870 s lock for 60 s, not for the 30 s left of the cap', () => {
    const four = failMany(EMPTY_LOCKOUT, 4, T0, DEFAULTS);
    expect(waitSeconds(four, T0 + 870 * S, DEFAULTS)).toBe(0);
    const fifth = admitAttempt(four, T0 + 870 * S, DEFAULTS)!;
    expect(fifth.lockedUntil).toBe(T0 + 930 * S);
    expect(waitSeconds(fifth.next, T0 + 870 * S, DEFAULTS)).toBe(60);
    // At 900 s the cap is over (the 4 early failures left the window), but the lock holds.
    expect(blockedUntil(fifth.next, T0 + 900 * S, DEFAULTS)).toBe(T0 + 930 * S);
    // Once it ends, the streak goes on: the next failure locks for 120 s.
    const sixth = admitAttempt(fifth.next, T0 + 930 * S, DEFAULTS)!;
    expect(sixth.lockedUntil).toBe(T0 + 1050 * S);
  });

  it('forgets failures once they leave the window: 4 failures, then 4 more 900 s later, do not lock', () => {
    const early = failMany(EMPTY_LOCKOUT, 4, T0, DEFAULTS);
    let state = early;
    for (let i = 0; i < 4; i++) {
      const admission = admitAttempt(state, T0 + 900 * S, DEFAULTS)!;
      expect(admission.lockedUntil, `late failure ${i + 1}`).toBeNull();
      state = admission.next;
    }
    expect(state.failureTimes).toEqual(Array(4).fill(T0 + 900 * S));
    // 1 ms earlier the early failures still count: the first late one fills the cap.
    expect(admitAttempt(early, T0 + 900 * S - 1, DEFAULTS)!.lockedUntil).toBe(T0 + 960 * S - 1);
  });

  it('never keeps more than `count` failure times', () => {
    let state: LockoutState = EMPTY_LOCKOUT;
    let now = T0;
    for (let i = 0; i < 30; i++) {
      const until = blockedUntil(state, now, THREE);
      if (until !== null) now = until;
      state = fail(state, now, THREE);
      expect(state.failureTimes.length).toBeLessThanOrEqual(3);
      expect([...state.failureTimes].sort((a, b) => a - b)).toEqual(state.failureTimes);
    }
  });

  it('does not change the state it is given (admitting, checking or withdrawing)', () => {
    const before = frozen(failMany(EMPTY_LOCKOUT, 4, T0, DEFAULTS));
    const copy = structuredClone(before);
    const admission = admitAttempt(before, T0 + S, DEFAULTS)!;
    blockedUntil(before, T0 + S, DEFAULTS);
    withdrawAttempt(frozen(admission.next), { at: T0 + S, admission, before });
    expect(before).toEqual(copy);
    expect(EMPTY_LOCKOUT).toEqual({ failureTimes: [], level: 0, lockedUntil: null });
  });
});

describe('escalation', () => {
  it('at the defaults: 5 rapid failures wait 900 s; then one failure each waits 120, 240, 480, 900, 900 s', () => {
    let now = T0;
    let state = failMany(EMPTY_LOCKOUT, 5, now, DEFAULTS);
    expect(waitSeconds(state, now, DEFAULTS)).toBe(900);
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      now += waitSeconds(state, now, DEFAULTS) * S;
      expect(blockedUntil(state, now - 1, DEFAULTS), 'blocked 1 ms before').not.toBeNull();
      expect(blockedUntil(state, now, DEFAULTS)).toBeNull();
      // One guess, not another five.
      state = fail(state, now, DEFAULTS);
      expect(admitAttempt(state, now, DEFAULTS)).toBeNull();
      waits.push(waitSeconds(state, now, DEFAULTS));
    }
    expect(waits).toEqual([120, 240, 480, 900, 900, 900]);
    expect(state.level).toBe(7);
  });

  it('follows LOCKOUT_BASE and LOCKOUT_MAX when every failure locks (1/5, base 10, max 25): 10, 20, 25, 25', () => {
    let now = T0;
    let state: LockoutState = EMPTY_LOCKOUT;
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      state = fail(state, now, ONE);
      waits.push(waitSeconds(state, now, ONE));
      now += waits.at(-1)! * S;
    }
    expect(waits).toEqual([10, 20, 25, 25]);
  });

  it('waits for the cap when it outlasts the lock (3/60, base 7): 3 rapid failures wait 60 s, then 14, 28, 56, 100', () => {
    let now = T0;
    let state = failMany(EMPTY_LOCKOUT, 3, now, THREE);
    expect(state.lockedUntil).toBe(now + 7 * S);
    const waits = [waitSeconds(state, now, THREE)];
    for (let i = 0; i < 4; i++) {
      now += waits.at(-1)! * S;
      state = fail(state, now, THREE);
      waits.push(waitSeconds(state, now, THREE));
    }
    expect(waits).toEqual([60, 14, 28, 56, 100]);
  });

  it('a success (EMPTY_LOCKOUT) starts over: the next lock is LOCKOUT_BASE again', () => {
    // Reach level 3, then a right password resets the row; 5 failures lock for 60 s again.
    let now = T0;
    let state = failMany(EMPTY_LOCKOUT, 5, now, DEFAULTS);
    for (let i = 0; i < 2; i++) {
      now = blockedUntil(state, now, DEFAULTS)!;
      state = fail(state, now, DEFAULTS);
    }
    expect(state.level).toBe(3);
    now = blockedUntil(state, now, DEFAULTS)!;
    const afterSuccess = failMany(EMPTY_LOCKOUT, 4, now, DEFAULTS);
    expect(admitAttempt(afterSuccess, now, DEFAULTS)!.lockedUntil).toBe(now + 60 * S);
  });
});

describe('the quiet spell ends a streak', () => {
  it('forgets the level after window + LOCKOUT_MAX (1800 s) without a failure, and not 1 ms before', () => {
    const state = failMany(EMPTY_LOCKOUT, 5, T0, DEFAULTS);
    expect(state.level).toBe(1);
    const quiet = T0 + quietSpellMs(DEFAULTS);

    const justBefore = admitAttempt(state, quiet - 1, DEFAULTS)!;
    expect(justBefore.lockedUntil, '1 ms before the quiet spell: the streak goes on').toBe(quiet - 1 + 120 * S);
    expect(justBefore.next.level).toBe(2);

    const atQuiet = admitAttempt(state, quiet, DEFAULTS)!;
    expect(atQuiet.lockedUntil, 'after the quiet spell: a fresh start').toBeNull();
    expect(atQuiet.next).toEqual({ failureTimes: [quiet], level: 0, lockedUntil: null });
    // A fresh start means 5 fresh guesses, and LOCKOUT_BASE at the 5th.
    const four = failMany(atQuiet.next, 3, quiet, DEFAULTS);
    expect(admitAttempt(four, quiet, DEFAULTS)!.lockedUntil).toBe(quiet + 60 * S);
  });

  it('counts the quiet spell from the latest failure, not the first', () => {
    let state = failMany(EMPTY_LOCKOUT, 5, T0, DEFAULTS);
    const last = T0 + 900 * S;
    state = fail(state, last, DEFAULTS); // locks for 120 s, level 2
    expect(state.level).toBe(2);
    const quiet = last + quietSpellMs(DEFAULTS);
    // 1800 s after the FIRST failures (but 900 s after the latest), the streak is remembered.
    expect(admitAttempt(state, T0 + quietSpellMs(DEFAULTS), DEFAULTS)!.lockedUntil).toBe(T0 + 1800 * S + 240 * S);
    expect(admitAttempt(state, quiet - 1, DEFAULTS)!.lockedUntil).toBe(quiet - 1 + 240 * S);
    expect(admitAttempt(state, quiet, DEFAULTS)!.lockedUntil).toBeNull();
  });

  it('forgets even a streak at LOCKOUT_MAX (1/5, base 10, max 25: quiet after 30 s)', () => {
    let now = T0;
    let state: LockoutState = EMPTY_LOCKOUT;
    for (let i = 0; i < 4; i++) {
      state = fail(state, now, ONE);
      now = blockedUntil(state, now, ONE)!;
    }
    const last = state.failureTimes.at(-1)!;
    expect(state.lockedUntil! - last).toBe(25 * S);
    expect(admitAttempt(state, last + 30 * S - 1, ONE)!.lockedUntil).toBe(last + 30 * S - 1 + 25 * S);
    expect(admitAttempt(state, last + 30 * S, ONE)!.lockedUntil).toBe(last + 30 * S + 10 * S);
  });
});

describe('withdrawAttempt: an attempt that got no verdict is taken back', () => {
  /** Admits an attempt, returning what withdrawAttempt needs. */
  function attempt(before: LockoutState, at: number, policy: LockoutPolicy) {
    const admission = admitAttempt(before, at, policy);
    if (admission === null) throw new Error('refused');
    return { at, admission, before };
  }

  it('withdrawing the attempt that filled the cap restores the state before it: no lock, no level, no block', () => {
    const before = failMany(EMPTY_LOCKOUT, 4, T0, DEFAULTS);
    const fifth = attempt(before, T0 + S, DEFAULTS);
    expect(fifth.admission.lockedUntil).toBe(T0 + 61 * S);
    const after = withdrawAttempt(fifth.admission.next, fifth);
    expect(after).toEqual(before);
    expect(blockedUntil(after, T0 + S, DEFAULTS)).toBeNull();
    // The next attempt fills the cap again, at LOCKOUT_BASE.
    expect(admitAttempt(after, T0 + 2 * S, DEFAULTS)!.lockedUntil).toBe(T0 + 62 * S);
  });

  it('withdrawing an escalated attempt restores the level, so the next lock is no longer', () => {
    let state = failMany(EMPTY_LOCKOUT, 5, T0, DEFAULTS);
    state = fail(state, T0 + 900 * S, DEFAULTS); // 120 s, level 2
    const at = T0 + 1020 * S;
    const third = attempt(state, at, DEFAULTS);
    expect(third.admission.lockedUntil).toBe(at + 240 * S);
    const after = withdrawAttempt(third.admission.next, third);
    expect(after).toEqual(state);
    expect(blockedUntil(after, at, DEFAULTS)).toBeNull();
    expect(admitAttempt(after, at + S, DEFAULTS)!.lockedUntil).toBe(at + S + 240 * S);
  });

  it('withdrawing an attempt that set no lock removes only its own failure', () => {
    const first = attempt(EMPTY_LOCKOUT, T0, THREE);
    const second = fail(first.admission.next, T0 + S, THREE);
    expect(withdrawAttempt(second, first)).toEqual({ failureTimes: [T0 + S], level: 0, lockedUntil: null });
    // Two attempts at the same instant: withdrawing one leaves the other counted.
    const a = attempt(EMPTY_LOCKOUT, T0, THREE);
    const both = fail(a.admission.next, T0, THREE);
    expect(withdrawAttempt(both, a)).toEqual({ failureTimes: [T0], level: 0, lockedUntil: null });
  });

  it('keeps a lock that a later attempt set while this one had no lock of its own', () => {
    // THREE: A is the 2nd failure (no lock); the 3rd fills the cap while A's verdict is pending.
    const first = fail(EMPTY_LOCKOUT, T0, THREE);
    const a = attempt(first, T0 + S, THREE); // 2nd: no lock
    const filled = fail(a.admission.next, T0 + 2 * S, THREE); // 3rd fills the cap: 7 s lock
    const after = withdrawAttempt(filled, a);
    expect(after).toEqual({ failureTimes: [T0, T0 + 2 * S], level: 1, lockedUntil: T0 + 9 * S });
  });

  it('does not undo a lock that is no longer the one the attempt set', () => {
    // THREE, a streak at level 1 whose failures have left the window.
    let state = failMany(EMPTY_LOCKOUT, 3, T0, THREE);
    const t = T0 + 60 * S;
    const a = attempt(state, t, THREE); // locks for 14 s, level 2
    expect(a.admission.lockedUntil).toBe(t + 14 * S);
    // A's verdict is still pending when its lock ends and B fails, locking for 28 s.
    state = fail(a.admission.next, t + 14 * S, THREE);
    expect(state).toEqual({ failureTimes: [t, t + 14 * S], level: 3, lockedUntil: t + 42 * S });
    // Taking A back removes its failure, but B's lock and the level stay.
    const after = withdrawAttempt(state, a);
    expect(after).toEqual({ failureTimes: [t + 14 * S], level: 3, lockedUntil: t + 42 * S });
    expect(blockedUntil(after, t + 14 * S, THREE)).toBe(t + 42 * S);
  });

  // The attempt admitted once a block ends drops the streak's older failures from the log (they
  // left the window); were the log left empty by the withdrawal, it would read as a quiet spell
  // and an overload at the right moment would give an attacker 5 fresh guesses instead of 1.
  it('withdrawing the first attempt after a block keeps the streak: the next failure still locks for 120 s', () => {
    const before = failMany(EMPTY_LOCKOUT, 5, T0, DEFAULTS);
    const at = T0 + 900 * S;
    const first = attempt(before, at, DEFAULTS);
    expect(first.admission.lockedUntil).toBe(at + 120 * S);
    const after = withdrawAttempt(first.admission.next, first);
    expect(after).toEqual(before);
    expect(admitAttempt(after, at + S, DEFAULTS)!.lockedUntil).toBe(at + S + 120 * S);
  });

  it('leaves a state cleared by a success as it is, when the log no longer holds the attempt', () => {
    const a = attempt(failMany(EMPTY_LOCKOUT, 4, T0, DEFAULTS), T0, DEFAULTS);
    expect(withdrawAttempt(EMPTY_LOCKOUT, a)).toEqual(EMPTY_LOCKOUT);
    // With 1/5, A's failure is pushed out of the one-entry log by B.
    const one = attempt(EMPTY_LOCKOUT, T0, ONE);
    const b = fail(one.admission.next, T0 + 10 * S, ONE);
    expect(withdrawAttempt(b, one)).toEqual(b);
  });
});

// --- A seeded randomized simulation -------------------------------------------------------

/** mulberry32: a small deterministic PRNG, so a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The largest number of times in any span [x, x + span) (times sorted). */
function mostInAnySpan(times: number[], span: number): number {
  let most = 0;
  let start = 0;
  for (let end = 0; end < times.length; end++) {
    while (times[end]! - times[start]! >= span) start++;
    most = Math.max(most, end - start + 1);
  }
  return most;
}

interface SimulationResult {
  attempts: number;
  admitted: number;
  refused: number;
  successes: number;
  locks: number;
  /** The highest lock index (k) reached in a streak. */
  deepestStreak: number;
  streaksForgotten: number;
}

/**
 * Runs `attempts` attempts at random gaps (often exactly at, or 1 ms around, the end of a block
 * or of the quiet spell), each right with probability `pRight`, and checks every one against a
 * model of the rule kept here, independently of the state the rule stores.
 */
function simulate(policy: LockoutPolicy, seed: number, attempts: number, pRight: number): SimulationResult {
  const random = prng(seed);
  const W = policy.failures.seconds * S;
  const count = policy.failures.count;
  const quiet = quietSpellMs(policy);
  const pick = (n: number) => Math.floor(random() * n);

  let state: LockoutState = EMPTY_LOCKOUT;
  let now = T0;
  // The model: admitted attempts since the last success, the locks of the current streak,
  // and the end of the latest lock.
  let segment: number[] = [];
  let lastFailure: number | null = null;
  let k = 0;
  let lockEnd: number | null = null;
  const result: SimulationResult = { attempts, admitted: 0, refused: 0, successes: 0, locks: 0, deepestStreak: 0, streaksForgotten: 0 };

  const checkSegment = () => {
    expect(mostInAnySpan(segment, W), `(a) seed ${seed}: more than ${count} admitted attempts in one ${W / S} s span`).toBeLessThanOrEqual(count);
  };

  for (let i = 0; i < attempts; i++) {
    const where = `seed ${seed}, attempt ${i} at +${now - T0} ms`;
    // The next instant.
    const until = blockedUntil(state, now, policy);
    const r = random();
    if (r < 0.2) {
      // Same instant: concurrent attempts.
    } else if (r < 0.4) {
      now += pick(2 * S);
    } else if (r < 0.55) {
      now += pick(W);
    } else if (r < 0.62) {
      now += pick(2 * quiet);
    } else if (r < 0.8 && until !== null) {
      now = until + [-1, 0, 0, 1][pick(4)]!; // at the end of the block, or 1 ms around it
    } else if (r < 0.9 && segment.length > 0) {
      // When one of the latest failures leaves the window, or 1 ms around it.
      const failure = segment[segment.length - 1 - pick(Math.min(count, segment.length))]!;
      now = Math.max(now, failure + W + [-1, 0, 1][pick(3)]!);
    } else if (lastFailure !== null) {
      now = Math.max(now, lastFailure + quiet + [-1, 0, 1][pick(3)]!);
    } else {
      now += pick(5 * S);
    }

    // The model's view of the streak: a quiet spell since the latest failure ends it.
    if (lastFailure !== null && now - lastFailure >= quiet) {
      if (k > 0) result.streaksForgotten++;
      k = 0;
      lastFailure = null;
      // (The lock of a forgotten streak has always ended: it lasts at most LOCKOUT_MAX.)
      expect(lockEnd === null || lockEnd <= now, where).toBe(true);
    }

    // The model's block: the lock in force, and the cap of the admitted attempts in the window.
    const inWindow = segment.filter((t) => t > now - W);
    const capEnd = inWindow.length >= count ? inWindow[inWindow.length - count]! + W : null;
    const expectedEnd = Math.max(lockEnd ?? 0, capEnd ?? 0);
    const expectedUntil = expectedEnd > now ? expectedEnd : null;
    expect(blockedUntil(state, now, policy), `${where}: blockedUntil`).toBe(expectedUntil);

    const admission = admitAttempt(state, now, policy);
    // (b) admitted iff blockedUntil is null.
    expect(admission === null, `(b) ${where}: admitted iff not blocked`).toBe(blockedUntil(state, now, policy) !== null);
    if (admission === null) {
      result.refused++;
      continue;
    }
    result.admitted++;
    segment.push(now);
    const fillsCap = inWindow.length + 1 === count;
    expect(inWindow.length + 1, `(a) ${where}`).toBeLessThanOrEqual(count);

    // A lock is set by the failure that fills the cap, and by every failure of a streak that has had one.
    expect(admission.lockedUntil !== null, `${where}: sets a lock (k=${k}, fills cap: ${fillsCap})`).toBe(k > 0 || fillsCap);
    if (admission.lockedUntil !== null) {
      // (c) the k-th lock of a streak lasts exactly min(base·2^k, max).
      expect(admission.lockedUntil - now, `(c) ${where}: lock ${k} of its streak`).toBe(
        Math.min(policy.baseSeconds * 2 ** k, policy.maxSeconds) * S,
      );
      result.locks++;
      k++;
      result.deepestStreak = Math.max(result.deepestStreak, k);
      lockEnd = admission.lockedUntil;
    }

    if (random() < pRight) {
      // A right password: the row is deleted.
      result.successes++;
      checkSegment();
      segment = [];
      state = EMPTY_LOCKOUT;
      lastFailure = null;
      k = 0;
      lockEnd = null;
    } else {
      state = admission.next;
      lastFailure = now;
    }
  }
  checkSegment();
  return result;
}

describe('a seeded randomized simulation against a model of the rule', () => {
  const cases: Array<[name: string, policy: LockoutPolicy, seed: number, pRight: number]> = [
    ['defaults (5/900, 60..900)', DEFAULTS, 20240611, 0.03],
    ['defaults, frequent successes', DEFAULTS, 7, 0.2],
    ['1/5, base 10, max 25', ONE, 99, 0.05],
    ['3/60, base 7, max 100', THREE, 4242, 0.04],
    ['3/60, base 7, max 100, frequent successes', THREE, 31337, 0.25],
  ];

  it.each(cases)('%s: (a) the cap holds between successes, (b) admitted iff not blocked, (c) each lock lasts min(base·2^k, max)', (_, policy, seed, pRight) => {
    const result = simulate(policy, seed, 5000, pRight);
    // The run exercised what it checks: refusals, successes, deep streaks and forgotten ones.
    expect(result.admitted).toBeGreaterThan(1000);
    expect(result.refused).toBeGreaterThan(200);
    expect(result.successes).toBeGreaterThan(50);
    expect(result.locks).toBeGreaterThan(200);
    expect(result.streaksForgotten).toBeGreaterThan(20);
    // Deep enough to reach LOCKOUT_MAX.
    const levelsToMax = Math.ceil(Math.log2(policy.maxSeconds / policy.baseSeconds)) + 1;
    expect(result.deepestStreak).toBeGreaterThanOrEqual(levelsToMax);
  });
});
