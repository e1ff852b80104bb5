import { purgeExpiredSessions } from './auth/sessions.js';
import type { AppServices } from './context.js';

/** Deletes revocation entries, refresh tokens and sessions whose expiry has passed. */
export async function purgeExpired(services: AppServices): Promise<{ revokedTokens: number; sessions: number }> {
  const now = services.clock.now();
  const revokedTokens = await services.revocations.purgeExpired(now);
  const sessions = await purgeExpiredSessions(services.db, now);
  return { revokedTokens, sessions };
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
