import { eq, lt, sql } from 'drizzle-orm';
import type { AuthorizationMemory, SessionFacts } from '../authz/authorization-memory.js';
import type { Database, Tx } from '../db/client.js';
import type { Source } from '../db/exact-cache.js';
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

/** The revocation check every authenticated request goes through. */
export interface RevocationList {
  /** Null when the token may be honoured, else the reason it may not. */
  isRevoked(claims: AccessClaims, now: Date): Promise<RevocationReason | null>;
  /** Records an access token as revoked until it would have expired anyway. */
  revokeAccessToken(tx: Tx | Database, claims: Pick<AccessClaims, 'jti' | 'exp'>): Promise<void>;
  /** Drops entries whose token has expired; returns how many. */
  purgeExpired(now: Date): Promise<number>;
}

/** What decides a check: the user, the token's session, whether its jti was revoked. */
interface Facts {
  user: { active: boolean; tokensValidAfter: Date | null } | null;
  session: SessionFacts | null;
  tokenRevoked: boolean;
}

function judge(facts: Facts, claims: AccessClaims, now: Date): RevocationReason | null {
  const { user, session } = facts;
  if (!user) return 'user_missing';
  if (!user.active) return 'user_disabled';
  if (facts.tokenRevoked) return 'token_revoked';
  if (!session || session.userId !== claims.sub || session.revokedAt) return 'session_revoked';
  if (session.expiresAt <= now) return 'session_expired';
  if (user.tokensValidAfter && issuedBefore(claims.iat, user.tokensValidAfter, session.createdAt)) {
    return 'issued_before_cutoff';
  }
  return null;
}

/**
 * Checks from this instance's memory while it is trusted (the change feed is live), else with
 * one query to the database: both ask the same questions and judge them by the same rules.
 */
export function createRevocationList(
  db: Database,
  memory: AuthorizationMemory,
  onCheck?: (source: Source) => void,
): RevocationList {
  async function fromDatabase(claims: AccessClaims): Promise<Facts> {
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
    if (!row) return { user: null, session: null, tokenRevoked: false };
    return {
      user: row,
      session:
        row.sessionUserId && row.sessionCreatedAt && row.sessionExpiresAt
          ? { userId: row.sessionUserId, createdAt: row.sessionCreatedAt, revokedAt: row.sessionRevokedAt, expiresAt: row.sessionExpiresAt }
          : null,
      tokenRevoked: row.tokenRevoked,
    };
  }

  async function fromMemory(claims: AccessClaims, now: Date): Promise<Facts | null> {
    const at = memory.generation();
    const tokenRevoked = memory.tokenRevoked(claims.jti, now);
    let source: Source = 'memory';
    const note = (from: Source) => {
      if (from === 'database') source = 'database';
    };
    const [user, session] = await Promise.all([memory.account(claims.sub, note), memory.session(claims.sid, note)]);
    // The feed went down (and perhaps came back) meanwhile: the jti read may predate a missed revocation.
    if (!memory.live() || memory.generation() !== at) return null;
    onCheck?.(source);
    return { user, session, tokenRevoked };
  }

  return {
    async isRevoked(claims, now) {
      const facts = memory.live() ? await fromMemory(claims, now) : null;
      if (facts) return judge(facts, claims, now);
      onCheck?.('database');
      return judge(await fromDatabase(claims), claims, now);
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
