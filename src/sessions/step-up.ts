import type { AccessClaims } from '../tokens/access-tokens.js';
import { epochSeconds } from '../time.js';

/** What step-up checks read from a verified access token: how and when its session was authenticated. */
export type Authentication = Pick<AccessClaims, 'amr' | 'auth_time'>;

/**
 * The `amr` values (RFC 8176) of each kind of factor: something known (a password), something
 * held (an authenticator app's code, a recovery code, a security key or passkey), something
 * one is (user verification on the authenticator: biometrics or its PIN).
 */
const FACTOR_KINDS: Record<string, 'knowledge' | 'possession' | 'inherence'> = {
  pwd: 'knowledge',
  // A provider's sign-in (social sign-in) counts as a first factor, of a password's weight: what
  // the provider checked is unknown here (often just a password), so a password beside it adds no
  // second kind, while a code or a passkey does (`fed`+`otp`).
  fed: 'knowledge',
  otp: 'possession',
  hwk: 'possession',
  swk: 'possession',
  user: 'inherence',
  pin: 'knowledge',
};

/** True when the session was authenticated with factors of at least two kinds (`["pwd","otp"]`, `["hwk","user"]`). */
export function passedSecondFactor(authentication: Pick<Authentication, 'amr'>): boolean {
  const kinds = new Set(authentication.amr.map((value) => FACTOR_KINDS[value]).filter(Boolean));
  return kinds.size >= 2;
}

/**
 * REQUIRE_SECOND_FACTOR_FOR_ROLES: the roles a session may use. All it holds once it passed a
 * second factor; otherwise only those not reserved to sessions that did.
 */
export function usableRoles(held: readonly string[], authentication: Pick<Authentication, 'amr'>, secondFactorRoles: readonly string[]): string[] {
  if (passedSecondFactor(authentication)) return [...held];
  return held.filter((role) => !secondFactorRoles.includes(role));
}

/**
 * True when the session was (re-)authenticated at most `maxAgeSeconds` ago. A token without
 * `auth_time` (signed before sessions recorded it) never counts as recent.
 */
export function authenticatedRecently(authentication: Authentication, now: Date, maxAgeSeconds: number): boolean {
  if (authentication.auth_time === undefined) return false;
  return epochSeconds(now) - authentication.auth_time <= maxAgeSeconds;
}
