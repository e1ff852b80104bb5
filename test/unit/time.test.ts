import { describe, expect, it } from 'vitest';
import { addSeconds, epochSeconds, fromEpochSeconds, retryAfterSeconds, wholeSecondsLeft } from '../../src/time.js';

const now = new Date('2030-01-01T00:00:00.000Z');
const later = (ms: number) => new Date(now.getTime() + ms);

describe('time helpers', () => {
  it('moves a date by whole or fractional seconds, forwards and back', () => {
    expect(addSeconds(now, 90).toISOString()).toBe('2030-01-01T00:01:30.000Z');
    expect(addSeconds(now, -86_400).toISOString()).toBe('2029-12-31T00:00:00.000Z');
    expect(addSeconds(now, 0.25).toISOString()).toBe('2030-01-01T00:00:00.250Z');
    expect(addSeconds(now, 0)).not.toBe(now);
  });

  it('gives epoch seconds rounded down, and reads them back', () => {
    expect(epochSeconds(now)).toBe(1_893_456_000);
    expect(epochSeconds(later(999))).toBe(1_893_456_000);
    expect(epochSeconds(later(1000))).toBe(1_893_456_001);
    expect(epochSeconds(new Date(-1))).toBe(-1);
    expect(fromEpochSeconds(1_893_456_001)).toEqual(later(1000));
    expect(fromEpochSeconds(epochSeconds(later(1500)))).toEqual(later(1000));
  });

  it('rounds a lifetime left down, never below 0', () => {
    expect(wholeSecondsLeft(later(900_000), now)).toBe(900);
    expect(wholeSecondsLeft(later(900_999), now)).toBe(900);
    expect(wholeSecondsLeft(later(999), now)).toBe(0);
    expect(wholeSecondsLeft(now, now)).toBe(0);
    expect(wholeSecondsLeft(later(-5000), now)).toBe(0);
  });

  it('rounds a wait up, never below 1, so a retry is never early nor told 0', () => {
    expect(retryAfterSeconds(later(60_000), now)).toBe(60);
    expect(retryAfterSeconds(later(60_001), now)).toBe(61);
    expect(retryAfterSeconds(later(1), now)).toBe(1);
    expect(retryAfterSeconds(now, now)).toBe(1);
    expect(retryAfterSeconds(later(-5000), now)).toBe(1);
  });
});
