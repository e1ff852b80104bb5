import { describe, expect, it } from 'vitest';
import {
  dueSteps,
  prePublicationMs,
  retentionMs,
  signingKeyAt,
  type KeySchedulePolicy,
  type KeyStep,
  type ScheduledKey,
} from '../../src/tokens/key-schedule.js';

const SECOND = 1000;
/** JWKS_MAX_AGE 5 s, KEY_ROTATION_INTERVAL 20 s, ACCESS_TOKEN_TTL 10 s: pre-publication 10 s, retention 15 s. */
const policy: KeySchedulePolicy = {
  algorithm: 'ES256',
  jwksMaxAgeMs: 5 * SECOND,
  rotationIntervalMs: 20 * SECOND,
  accessTokenTtlMs: 10 * SECOND,
};
const T0 = Date.UTC(2030, 0, 1);

function key(kid: string, fields: Partial<ScheduledKey> = {}): ScheduledKey {
  return { kid, algorithm: 'ES256', state: 'current', source: 'generated', activatesAt: T0, retiredAt: null, removeAt: null, ...fields };
}

/**
 * Applies steps as the key store does (with the same retention), so the rule can be run over a
 * timeline. New keys are named k1, k2, … in order of creation.
 */
function createApplier(rulePolicy: KeySchedulePolicy = policy) {
  let created = 0;
  return (keys: ScheduledKey[], steps: KeyStep[], now: number): ScheduledKey[] => {
    let result = [...keys];
    for (const step of steps) {
      if (step.kind === 'create') {
        created += 1;
        result.push(key(`k${created}`, { algorithm: rulePolicy.algorithm, state: step.state, activatesAt: step.activatesAt }));
      } else if (step.kind === 'promote') {
        result = result.map((k) => {
          if (k.kid === step.retiring) return { ...k, state: 'retired', retiredAt: now, removeAt: now + retentionMs(rulePolicy) };
          if (k.kid === step.kid) return { ...k, state: 'current' };
          return k;
        });
      } else {
        result = result.filter((k) => k.kid !== step.kid);
      }
    }
    return result;
  };
}

describe('the signing-key schedule', () => {
  it('derives the pre-publication wait and the retention from JWKS_MAX_AGE and ACCESS_TOKEN_TTL', () => {
    expect(prePublicationMs(policy)).toBe(10 * SECOND);
    expect(retentionMs(policy)).toBe(15 * SECOND);
  });

  it('creates a current key, signing now, in an empty key set', () => {
    expect(dueSteps([], T0, policy)).toEqual([{ kind: 'create', state: 'current', activatesAt: T0 }]);
  });

  it('promotes a waiting next key at once when no key is current, retiring nothing', () => {
    const waiting = key('n', { state: 'next', activatesAt: T0 + 60 * SECOND });
    expect(dueSteps([waiting], T0, policy)).toEqual([{ kind: 'promote', kid: 'n', retiring: null }]);
  });

  it('does nothing while the current key is younger than the interval minus the pre-publication wait', () => {
    const current = key('c');
    expect(dueSteps([current], T0, policy)).toEqual([]);
    expect(dueSteps([current], T0 + 10 * SECOND - 1, policy)).toEqual([]);
  });

  it('creates the next key 2 × JWKS_MAX_AGE before the interval ends, activating when it ends', () => {
    const current = key('c');
    expect(dueSteps([current], T0 + 10 * SECOND, policy)).toEqual([{ kind: 'create', state: 'next', activatesAt: T0 + 20 * SECOND }]);
  });

  it('never activates a late-created next key before 2 × JWKS_MAX_AGE from its creation', () => {
    const current = key('c');
    // The schedule did not run for a while (every instance was down): due since T0 + 10 s.
    expect(dueSteps([current], T0 + 15 * SECOND, policy)).toEqual([{ kind: 'create', state: 'next', activatesAt: T0 + 25 * SECOND }]);
    expect(dueSteps([current], T0 + 300 * SECOND, policy)).toEqual([{ kind: 'create', state: 'next', activatesAt: T0 + 310 * SECOND }]);
  });

  it('waits for a next key to activate, then promotes it and retires the current one', () => {
    const keys = [key('c'), key('n', { state: 'next', activatesAt: T0 + 20 * SECOND })];
    expect(dueSteps(keys, T0 + 20 * SECOND - 1, policy)).toEqual([]);
    expect(dueSteps(keys, T0 + 20 * SECOND, policy)).toEqual([{ kind: 'promote', kid: 'n', retiring: 'c' }]);
    expect(dueSteps(keys, T0 + 500 * SECOND, policy)).toEqual([{ kind: 'promote', kid: 'n', retiring: 'c' }]);
  });

  it('removes a retired key once its removeAt has come, not before', () => {
    const keys = [key('c', { activatesAt: T0 + 10 * SECOND }), key('r', { state: 'retired', retiredAt: T0, removeAt: T0 + 15 * SECOND })];
    expect(dueSteps(keys, T0 + 15 * SECOND - 1, policy)).toEqual([]);
    expect(dueSteps(keys, T0 + 15 * SECOND, policy)).toEqual([{ kind: 'remove', kid: 'r' }]);
  });

  it('removes expired retired keys before anything else, in the same pass', () => {
    const keys = [
      key('r1', { state: 'retired', retiredAt: T0 - 40 * SECOND, removeAt: T0 - 25 * SECOND }),
      key('r2', { state: 'retired', retiredAt: T0 - 20 * SECOND, removeAt: T0 - 5 * SECOND }),
      key('c', { activatesAt: T0 - 20 * SECOND }),
    ];
    expect(dueSteps(keys, T0, policy)).toEqual([
      { kind: 'remove', kid: 'r1' },
      { kind: 'remove', kid: 'r2' },
      { kind: 'create', state: 'next', activatesAt: T0 + 10 * SECOND },
    ]);
  });

  it('never rotates by time when KEY_ROTATION_INTERVAL is 0', () => {
    const off = { ...policy, rotationIntervalMs: 0 };
    for (const later of [0, 10 * SECOND, 20 * SECOND, 3650 * 86_400 * SECOND]) {
      expect(dueSteps([key('c')], T0 + later, off)).toEqual([]);
    }
  });

  it('does not rotate a key from JWT_PRIVATE_KEY by time', () => {
    const fromEnvironment = key('env', { source: 'environment' });
    expect(dueSteps([fromEnvironment], T0 + 3650 * 86_400 * SECOND, policy)).toEqual([]);
  });

  it('schedules a key of the configured algorithm when the current key is of another one', () => {
    const rsa = key('c', { algorithm: 'RS256' });
    // Right after the current key started signing, and with rotation off too.
    expect(dueSteps([rsa], T0, policy)).toEqual([{ kind: 'create', state: 'next', activatesAt: T0 + 10 * SECOND }]);
    expect(dueSteps([rsa], T0, { ...policy, rotationIntervalMs: 0 })).toEqual([
      { kind: 'create', state: 'next', activatesAt: T0 + 10 * SECOND },
    ]);
    // Once that key waits, nothing more until it activates.
    expect(dueSteps([rsa, key('n', { state: 'next', activatesAt: T0 + 10 * SECOND })], T0 + SECOND, policy)).toEqual([]);
  });

  it('gives no steps when asked again right after its steps were applied', () => {
    const apply = createApplier();
    const situations: [ScheduledKey[], number][] = [
      [[], T0],
      [[key('c')], T0 + 10 * SECOND],
      [[key('c')], T0 + 999 * SECOND],
      [[key('c'), key('n', { state: 'next', activatesAt: T0 + 20 * SECOND })], T0 + 20 * SECOND],
      [[key('n', { state: 'next', activatesAt: T0 + 20 * SECOND })], T0],
      [[key('c', { algorithm: 'RS256' })], T0],
      [[key('c', { activatesAt: T0 + 5 * SECOND }), key('r', { state: 'retired', retiredAt: T0, removeAt: T0 + 15 * SECOND })], T0 + 15 * SECOND],
    ];
    for (const [keys, now] of situations) {
      const steps = dueSteps(keys, now, policy);
      expect(steps.length).toBeGreaterThan(0);
      expect(dueSteps(apply(keys, steps, now), now, policy)).toEqual([]);
    }
  });

  it('over a run of irregular steps, publishes every key 2 × JWKS_MAX_AGE before it signs and keeps it 15 s after', () => {
    const apply = createApplier();
    let keys: ScheduledKey[] = [];
    const published = new Map<string, number>();
    const signedFrom = new Map<string, number>();
    const signedUntil = new Map<string, number>();
    const removed = new Map<string, number>();
    let now = T0;
    // Steps 0.25 s to 4 s apart, as instances on uneven schedules would run them.
    const gaps = [250, 4000, 1000, 3000, 750, 2000, 4000, 500];
    for (let i = 0; now < T0 + 300 * SECOND; i++) {
      const steps = dueSteps(keys, now, policy);
      const before = new Set(keys.map((k) => k.kid));
      keys = apply(keys, steps, now);
      expect(dueSteps(keys, now, policy)).toEqual([]);
      expect(keys.filter((k) => k.state === 'current')).toHaveLength(1);
      expect(keys.filter((k) => k.state === 'next').length).toBeLessThanOrEqual(1);
      for (const k of keys) if (!published.has(k.kid)) published.set(k.kid, now);
      for (const kid of before) if (!keys.some((k) => k.kid === kid)) removed.set(kid, now);
      // Between steps, each instance signs with signingKeyAt on its own clock: sample every 250 ms.
      const gap = gaps[i % gaps.length]!;
      for (let at = now; at < now + gap; at += 250) {
        const signer = signingKeyAt(keys, at)!;
        if (!signedFrom.has(signer.kid)) signedFrom.set(signer.kid, at);
        signedUntil.set(signer.kid, at);
      }
      now += gap;
    }
    const [first, ...rotated] = [...signedFrom.keys()];
    // 300 s at one rotation every 20 s (a little more when a step comes late).
    expect(rotated.length).toBeGreaterThanOrEqual(12);
    expect(signedFrom.get(first!)).toBe(published.get(first!));
    for (const kid of rotated) {
      expect(signedFrom.get(kid)! - published.get(kid)!).toBeGreaterThanOrEqual(2 * policy.jwksMaxAgeMs);
    }
    for (const [kid, at] of removed) {
      expect(at - signedUntil.get(kid)!).toBeGreaterThanOrEqual(policy.accessTokenTtlMs + policy.jwksMaxAgeMs);
    }
    expect(removed.size).toBeGreaterThanOrEqual(10);
  });
});

describe('the key that signs', () => {
  const current = key('c');
  const next = key('n', { state: 'next', activatesAt: T0 + 20 * SECOND });
  const retired = key('r', { state: 'retired', activatesAt: T0 - 20 * SECOND, retiredAt: T0, removeAt: T0 + 15 * SECOND });

  it('is the current key while the next one waits', () => {
    expect(signingKeyAt([retired, next, current], T0 + 20 * SECOND - 1)?.kid).toBe('c');
  });

  it('is the next key from its activatesAt on, before any step promotes it', () => {
    expect(signingKeyAt([retired, next, current], T0 + 20 * SECOND)?.kid).toBe('n');
    expect(signingKeyAt([current, next], T0 + 60 * SECOND)?.kid).toBe('n');
  });

  it('is never a retired key, and nothing in an empty set', () => {
    expect(signingKeyAt([retired], T0)).toBeNull();
    expect(signingKeyAt([], T0)).toBeNull();
  });
});
