import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../src/clock.js';

describe('systemClock timers', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: new Date('2030-01-01T00:00:00.000Z') });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires at its instant, not before', () => {
    const fired = vi.fn();
    systemClock.setTimer(new Date(Date.now() + 900_000), fired);
    vi.advanceTimersByTime(899_999);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fired).toHaveBeenCalledOnce();
  });

  it('waits out an instant beyond setTimeout’s range (30 days) instead of firing at once', () => {
    const fired = vi.fn();
    const thirtyDays = 30 * 86_400_000;
    systemClock.setTimer(new Date(Date.now() + thirtyDays), fired);
    vi.advanceTimersByTime(1000);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(thirtyDays - 1001);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fired).toHaveBeenCalledOnce();
  });

  it('fires soon for an instant already past, and never once cancelled', () => {
    const past = vi.fn();
    systemClock.setTimer(new Date(Date.now() - 5000), past);
    const cancelled = vi.fn();
    const cancel = systemClock.setTimer(new Date(Date.now() + 40 * 86_400_000), cancelled);
    vi.advanceTimersByTime(2 ** 31);
    cancel();
    vi.advanceTimersByTime(40 * 86_400_000);
    expect(past).toHaveBeenCalledOnce();
    expect(cancelled).not.toHaveBeenCalled();
  });
});
