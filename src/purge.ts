import { purgeOneTimeTokens } from './accounts/one-time-tokens.js';
import { purgeExpiredSessions } from './sessions/sessions.js';
import { purgeExpiredChallenges } from './credentials/sign-in-challenges.js';
import type { AppServices } from './services.js';
import { purgeSocialStates } from './social/social-states.js';
import { purgeWebauthnChallenges } from './credentials/webauthn-challenges.js';

export interface PurgeCounts {
  revokedTokens: number;
  sessions: number;
  /** Emailed tokens spent or expired. */
  oneTimeTokens: number;
  /** Social sign-ins started and never completed. */
  socialStates: number;
  /** Sign-in challenges (second factor) past their expiry. */
  signInChallenges: number;
  /** WebAuthn challenges (passkey ceremonies) never answered. */
  webauthnChallenges: number;
  rateLimits: number;
  lockouts: number;
  auditEvents: number;
}

/**
 * Deletes what has expired: revocation entries, refresh tokens and sessions, spent or expired
 * emailed tokens, social sign-ins and passkey ceremonies never completed, ended rate-limit windows, stale lockouts, and audit events past their
 * retention. Keeps every table bounded.
 */
export async function purgeExpired(services: AppServices): Promise<PurgeCounts> {
  const now = services.clock.now();
  return {
    revokedTokens: await services.revocations.purgeExpired(now),
    sessions: await purgeExpiredSessions(services.db, now),
    oneTimeTokens: await purgeOneTimeTokens(services.db, now),
    socialStates: await purgeSocialStates(services.db, now),
    signInChallenges: await purgeExpiredChallenges(services.db, now),
    webauthnChallenges: await purgeWebauthnChallenges(services.db, now),
    rateLimits: await services.rateLimiter.purgeEnded(),
    lockouts: await services.lockout.purgeStale(),
    auditEvents: await services.audit.purgeExpired(),
  };
}

/** Runs purgeExpired every `intervalSeconds` in the background; returns its stop function. */
export function schedulePurge(services: AppServices, intervalSeconds: number): () => void {
  const timer = setInterval(() => {
    purgeExpired(services)
      .then((counts) => services.logger.debug(counts, 'purged expired tokens'))
      .catch((err: unknown) => services.logger.error({ err }, 'purge of expired tokens failed'));
  }, intervalSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
