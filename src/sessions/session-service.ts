import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Database } from '../db/client.js';
import type { SessionRow, UserRow } from '../db/schema.js';
import { InvalidRefreshTokenError } from '../errors.js';
import type { AccessClaims, AccessTokenCodec } from '../tokens/access-tokens.js';
import { loadAccess } from '../authz/permissions.js';
import { toAccount, type Account } from '../accounts/accounts.js';
import type { RequestInfo } from '../request-info.js';
import { wholeSecondsLeft } from '../time.js';
import type { RevocationList } from './revocation.js';
import { usableRoles } from './step-up.js';
import {
  findSessionOfRefreshToken,
  revokeSession,
  rotateRefreshToken,
  signOutEverywhere,
  type IssuedRefreshToken,
  type SessionPolicy,
} from './sessions.js';

/** What a successful sign-in, registration or refresh hands the client. */
export interface AuthTokens {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  refreshExpiresIn: number;
  /** The access token's `exp`, as an instant. */
  accessTokenExpiresAt: Date;
  /** When the refresh token stops working (its own lifetime, or the session's end if sooner). */
  refreshTokenExpiresAt: Date;
  user: Account;
  /** The session the tokens belong to (not part of the GraphQL payload). */
  sessionId: string;
}

/**
 * The access token a logout was sent with: a valid one, or one of ours whose only fault is its
 * `exp` (the signature verified), which still names the session it was issued in.
 */
export interface LogoutAccess {
  claims: AccessClaims;
  expired: boolean;
}

/**
 * What a logout did: revoked what it was given; found nothing live to revoke; or refused
 * `everywhere`, revoking nothing, because an expired access token came without a live refresh
 * token of its user.
 */
export type LogoutOutcome = 'revoked' | 'nothing_live' | 'everywhere_unproven';

export interface AuthServiceDeps {
  db: Database;
  clock: Clock;
  audit: AuditLog;
  accessTokens: AccessTokenCodec;
  revocations: RevocationList;
  sessionPolicy: SessionPolicy;
  /**
   * REQUIRE_SECOND_FACTOR_FOR_ROLES: roles a token names only when its session passed a second
   * factor, so a downstream service that trusts `roles` cannot grant what authgraph would refuse.
   */
  secondFactorRoles: readonly string[];
}

/** The session flows (refresh, sign-out) and the tokens every sign-in hands out. */
export function createAuthService(deps: AuthServiceDeps) {
  const { db, clock, audit, accessTokens, revocations, sessionPolicy, secondFactorRoles } = deps;

  async function accessTokenOf(session: Pick<SessionRow, 'id' | 'userId' | 'amr' | 'authTime'>, now: Date) {
    const roles = usableRoles((await loadAccess(db, session.userId)).roles, session, secondFactorRoles);
    const subject = { userId: session.userId, sessionId: session.id, roles, amr: session.amr, authTime: session.authTime };
    const access = await accessTokens.sign(subject, now);
    return { accessToken: access.token, expiresIn: wholeSecondsLeft(access.expiresAt, now), accessTokenExpiresAt: access.expiresAt };
  }

  async function tokensFor(
    user: UserRow,
    session: Pick<SessionRow, 'id' | 'amr' | 'authTime'>,
    refreshToken: IssuedRefreshToken,
    now: Date,
  ): Promise<AuthTokens> {
    // The session's record of how it was authenticated travels in every access token of it.
    const access = await accessTokenOf({ ...session, userId: user.id }, now);
    return {
      ...access,
      refreshToken: refreshToken.token,
      refreshExpiresIn: wholeSecondsLeft(refreshToken.expiresAt, now),
      refreshTokenExpiresAt: refreshToken.expiresAt,
      user: toAccount(user),
      sessionId: session.id,
    };
  }

  return {
    /** Tokens for a session another flow has just opened (password change, password reset). */
    issueTokens: tokensFor,

    /** A new access token for a live session (after a re-authentication: its new auth_time and amr). */
    issueAccessToken: accessTokenOf,

    /** Rotates a refresh token; see rotateRefreshToken for the reuse rules. */
    async refresh(presented: string, request: RequestInfo) {
      const now = clock.now();
      const result = await db.transaction(async (tx) => {
        const rotation = await rotateRefreshToken(tx, presented, { now, policy: sessionPolicy });
        if (rotation.kind === 'rejected') return rotation;
        const { session } = rotation;
        if (rotation.kind === 'replayed') {
          // Recorded with the revocation it caused: a replay is never detected without a trace.
          const detail = { sessionId: session.id, sessionRevoked: true };
          await audit.record({ type: 'refresh_reuse_detected', userId: session.userId, request, detail }, tx);
          return rotation;
        }
        const detail = { sessionId: session.id, retry: rotation.kind === 'reissued' };
        await audit.record({ type: 'refresh', userId: session.userId, request, detail }, tx);
        return rotation;
      });
      if (result.kind === 'rejected') throw new InvalidRefreshTokenError(result.reason);
      if (result.kind === 'replayed') throw new InvalidRefreshTokenError('replayed');
      return tokensFor(result.user, result.session, result.refreshToken, now);
    },

    /** The live session a refresh token names (neither it nor its session expired or revoked), else null. */
    async liveSessionOf(presented: string): Promise<string | null> {
      return (await findSessionOfRefreshToken(db, presented, clock.now()))?.id ?? null;
    },

    /**
     * Revokes the caller's access token and session, the session of a presented refresh token,
     * or (everywhere) all of the user's sessions and tokens. An expired access token of ours
     * ends its own session only while it would otherwise still be honoured (its session live,
     * its user active, not revoked itself): an old leaked token can end the session it was
     * issued in, nothing more. With it, `everywhere` also needs a live refresh token of the same
     * user, proof of holding the account now; else nothing is revoked.
     */
    async logout(options: {
      access: LogoutAccess | null;
      refreshToken?: string | null | undefined;
      everywhere: boolean;
      request: RequestInfo;
    }): Promise<LogoutOutcome> {
      const now = clock.now();
      const { access, everywhere } = options;
      const tokenSession = options.refreshToken ? await findSessionOfRefreshToken(db, options.refreshToken, now) : null;
      // Whose sessions `everywhere` ends: a valid access token's user, or an expired one's
      // when a live refresh token of that user comes with it.
      const everyoneOf = everywhere && access && (!access.expired || tokenSession?.userId === access.claims.sub) ? access.claims.sub : null;
      if (everywhere && !everyoneOf) return 'everywhere_unproven';
      const claims = access && (!access.expired || (await revocations.isRevoked(access.claims, now)) === null) ? access.claims : null;
      if (!claims && !tokenSession) return 'nothing_live';
      await db.transaction(async (tx) => {
        if (claims) {
          // An expired token needs no entry: it is refused by its `exp` already.
          if (!access!.expired) await revocations.revokeAccessToken(tx, claims);
          await revokeSession(tx, claims.sid, now);
        }
        if (tokenSession) await revokeSession(tx, tokenSession.id, now);
        if (everyoneOf) await signOutEverywhere(tx, everyoneOf, now);
        const event = {
          type: everywhere ? 'logout_everywhere' : 'logout',
          userId: claims?.sub ?? tokenSession?.userId,
          request: options.request,
          detail: { sessionId: claims?.sid ?? tokenSession?.id, ...(access?.expired && claims ? { accessTokenExpired: true } : {}) },
        } as const;
        await audit.record(event, tx);
      });
      return 'revoked';
    },
  };
}

export type AuthService = ReturnType<typeof createAuthService>;
