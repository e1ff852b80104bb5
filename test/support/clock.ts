import type { Clock } from '../../src/clock.js';

/** Every TestClock of this test file, so each test can be given back the time it started with. */
const clocks = new Set<TestClock>();

/** A clock that stands still until a test moves it; its timers fire as `advance` passes them. */
export class TestClock implements Clock {
  private current: number;
  private startOfTest: number | undefined;
  private readonly timers = new Set<{ at: number; fn: () => void }>();
  constructor(start = Date.now()) {
    this.current = start;
    clocks.add(this);
  }
  now(): Date {
    return new Date(this.current);
  }
  /** Moves the time on, and fires (in order of their instants) the timers it passed. */
  advance(seconds: number): void {
    this.current += seconds * 1000;
    const due = [...this.timers].filter((timer) => timer.at <= this.current).sort((a, b) => a.at - b.at);
    for (const timer of due) {
      this.timers.delete(timer);
      timer.fn();
    }
  }
  setTimer(at: Date, fn: () => void): () => void {
    if (at.getTime() <= this.current) {
      const immediate = setImmediate(fn);
      return () => clearImmediate(immediate);
    }
    const timer = { at: at.getTime(), fn };
    this.timers.add(timer);
    return () => this.timers.delete(timer);
  }
  /** Timers not yet fired nor cancelled, for tests of their clean-up. */
  pendingTimers(): number {
    return this.timers.size;
  }
  /** Takes the current instant as the one every later test starts at (the first call wins). */
  markStart(): void {
    this.startOfTest ??= this.current;
  }
  /** Goes back to the instant markStart took, if it took one. */
  reset(): void {
    if (this.startOfTest !== undefined) this.current = this.startOfTest;
  }
}

/**
 * Before each test (test/support/setup.ts): the instant of every clock made so far (in beforeAll)
 * becomes its starting point. After each test: every clock goes back to it. So no test sees the
 * time another test moved to, also when that test failed or timed out halfway.
 */
export const markTestClocks = () => clocks.forEach((clock) => clock.markStart());
export const resetTestClocks = () => clocks.forEach((clock) => clock.reset());
