import { eq, lt, sql } from 'drizzle-orm';
import type { Database, Tx } from '../db/client.js';
import { revokedTokens, sessions, users } from '../db/schema.js';
import { epochSeconds, fromEpochSeconds } from '../time.js';
import type { AccessClaims } from '../tokens/access-tokens.js';

/** Why a well-signed access token is no longer honoured. */
export type RevocationReason =
  | 'token_revoked'
  | 'session_revoked'
  | 'session_expired'
  | 'user_missing'
  | 'user_disabled'
  | 'issued_before_cutoff';

/**
 * The revocation check every authenticated request goes through. Kept behind this small
 * interface so that it can later be served from memory (kept in sync by LISTEN/NOTIFY)
 * without touching its callers.
 */
export interface RevocationList {
  /** Null when the token may be honoured, else the reason it may not. */
  isRevoked(claims: AccessClaims, now: Date): Promise<RevocationReason | null>;
  /** Records an access token as revoked until it would have expired anyway. */
  revokeAccessToken(tx: Tx | Database, claims: Pick<AccessClaims, 'jti' | 'exp'>): Promise<void>;
  /** Drops entries whose token has expired; returns how many. */
  purgeExpired(now: Date): Promise<number>;
}

/** The PostgreSQL-backed revocation list: one query per check. */
export function createRevocationList(db: Database): RevocationList {
  return {
    async isRevoked(claims, now) {
      const [row] = await db
        .select({
          active: users.active,
          tokensValidAfter: users.tokensValidAfter,
          sessionUserId: sessions.userId,
          sessionCreatedAt: sessions.createdAt,
          sessionRevokedAt: sessions.revokedAt,
          sessionExpiresAt: sessions.expiresAt,
          tokenRevoked: sql<boolean>`exists (select 1 from ${revokedTokens} where ${revokedTokens.jti} = ${claims.jti})`,
        })
        .from(users)
        .leftJoin(sessions, eq(sessions.id, claims.sid))
        .where(eq(users.id, claims.sub));
      if (!row) return 'user_missing';
      if (!row.active) return 'user_disabled';
      if (row.tokenRevoked) return 'token_revoked';
      if (row.sessionUserId !== claims.sub || row.sessionRevokedAt) return 'session_revoked';
      if (row.sessionExpiresAt && row.sessionExpiresAt <= now) return 'session_expired';
      if (row.tokensValidAfter && issuedBefore(claims.iat, row.tokensValidAfter, row.sessionCreatedAt)) {
        return 'issued_before_cutoff';
      }
      return null;
    },
    async revokeAccessToken(tx, { jti, exp }) {
      await tx
        .insert(revokedTokens)
        .values({ jti, expiresAt: fromEpochSeconds(exp) })
        .onConflictDoNothing();
    },
    async purgeExpired(now) {
      const deleted = await db.delete(revokedTokens).where(lt(revokedTokens.expiresAt, now)).returning({ jti: revokedTokens.jti });
      return deleted.length;
    },
  };
}

/**
 * `iat` has whole-second precision. A token stamped in the same second as the cut-off is
 * judged by its session: one that began at or after the cut-off (a sign-in right after "log
 * out everywhere", the new session of a password change) is honoured, an older one is not.
 * Every session alive at the cut-off was revoked with it, so none of those slips through.
 */
function issuedBefore(iat: number, cutoff: Date, sessionCreatedAt: Date | null): boolean {
  const cutoffSecond = epochSeconds(cutoff);
  if (iat !== cutoffSecond) return iat < cutoffSecond;
  return !sessionCreatedAt || sessionCreatedAt < cutoff;
}
