/**
 * When signing keys are made, start signing, stop, and go: the pure rule, in milliseconds.
 *
 * A key is published (`next`) for at least 2 × JWKS_MAX_AGE before it signs: an instance sees a
 * new key within JWKS_MAX_AGE, and a client's cached key set is at most JWKS_MAX_AGE old, so by
 * then every cached set holds it. Instances switch to it by its `activatesAt`, each on its own
 * clock; the promotion step only records it. A retired key stays published and accepted for
 * ACCESS_TOKEN_TTL + JWKS_MAX_AGE (the last instance to switch may sign with it until it sees the
 * change), so no token is refused because of a rotation.
 */

export type KeyState = 'next' | 'current' | 'retired' | 'revoked' | 'removed';

export interface ScheduledKey {
  kid: string;
  algorithm: string;
  state: KeyState;
  source: 'generated' | 'environment';
  activatesAt: number;
  retiredAt: number | null;
  removeAt: number | null;
}

export interface KeySchedulePolicy {
  /** The configured JWT_ALGORITHM. */
  algorithm: string;
  jwksMaxAgeMs: number;
  /** 0: no automatic rotation. */
  rotationIntervalMs: number;
  accessTokenTtlMs: number;
}

export type KeyStep =
  | { kind: 'create'; state: 'current' | 'next'; activatesAt: number }
  | { kind: 'promote'; kid: string; retiring: string | null }
  | { kind: 'remove'; kid: string };

/** How long a new key is published before it signs. */
export const prePublicationMs = (policy: KeySchedulePolicy) => 2 * policy.jwksMaxAgeMs;

/** How long a key stays published and accepted after it stopped signing. */
export const retentionMs = (policy: KeySchedulePolicy) => policy.accessTokenTtlMs + policy.jwksMaxAgeMs;

/** The steps due at `now`, in order. Applying them and asking again gives none. */
export function dueSteps(keys: readonly ScheduledKey[], now: number, policy: KeySchedulePolicy): KeyStep[] {
  const steps: KeyStep[] = [];
  const current = keys.find((k) => k.state === 'current') ?? null;
  const next = keys.find((k) => k.state === 'next') ?? null;
  for (const key of keys) {
    if (key.state === 'retired' && key.removeAt !== null && key.removeAt <= now) steps.push({ kind: 'remove', kid: key.kid });
  }
  if (!current) {
    // A fresh database (or a current key revoked without a replacement): sign at once.
    steps.push(next ? { kind: 'promote', kid: next.kid, retiring: null } : { kind: 'create', state: 'current', activatesAt: now });
    return steps;
  }
  if (next) {
    if (next.activatesAt <= now) steps.push({ kind: 'promote', kid: next.kid, retiring: current.kid });
    return steps;
  }
  // A key from JWT_PRIVATE_KEY is rotated away from by the operator (keys rotate), not by time.
  if (current.source === 'environment') return steps;
  const earliest = now + prePublicationMs(policy);
  if (current.algorithm !== policy.algorithm) {
    steps.push({ kind: 'create', state: 'next', activatesAt: earliest });
  } else if (policy.rotationIntervalMs > 0) {
    const due = current.activatesAt + policy.rotationIntervalMs;
    if (due - prePublicationMs(policy) <= now) steps.push({ kind: 'create', state: 'next', activatesAt: Math.max(due, earliest) });
  }
  return steps;
}

/** The key that signs at `now`: the `next` key from its activation on (before any step records it), else `current`. */
export function signingKeyAt<K extends Pick<ScheduledKey, 'state' | 'activatesAt'>>(keys: readonly K[], now: number): K | null {
  const next = keys.find((k) => k.state === 'next');
  if (next && next.activatesAt <= now) return next;
  return keys.find((k) => k.state === 'current') ?? null;
}
