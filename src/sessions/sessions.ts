import { and, desc, eq, gt, isNull, lt, ne, sql } from 'drizzle-orm';
import type { Database, Tx } from '../db/client.js';
import { generateSplitToken, parseSplitToken, secretMatches, type SplitToken } from '../crypto/split-token.js';
import { refreshTokens, sessions, users, type SessionRow, type UserRow } from '../db/schema.js';
import { addSeconds } from '../time.js';
import { lockUser, moveCutoff } from '../accounts/accounts.js';
import type { RequestInfo } from '../request-info.js';
import type { AccessClaims } from '../tokens/access-tokens.js';
import { deriveSuccessor } from '../tokens/refresh-tokens.js';

export interface SessionPolicy {
  refreshTokenTtl: number;
  sessionMaxAge: number;
  refreshReuseGrace: number;
  successorKey: Buffer;
}

export interface IssuedRefreshToken {
  token: string;
  expiresAt: Date;
}

/** Outcome of presenting a refresh token for rotation. */
export type RotationResult =
  | { kind: 'rotated' | 'reissued'; session: SessionRow; user: UserRow; refreshToken: IssuedRefreshToken }
  | { kind: 'replayed'; session: SessionRow }
  | { kind: 'rejected'; reason: 'malformed' | 'unknown' | 'bad_secret' | 'expired' | 'session_revoked' | 'user_disabled' };

const earlier = (a: Date, b: Date) => (a <= b ? a : b);

async function insertRefreshToken(
  tx: Tx,
  token: SplitToken,
  session: SessionRow,
  options: { parentId: string | null; now: Date; ttl: number },
): Promise<IssuedRefreshToken> {
  // No refresh token outlives its session's absolute lifetime.
  const expiresAt = earlier(addSeconds(options.now, options.ttl), session.expiresAt);
  await tx.insert(refreshTokens).values({
    id: token.id,
    sessionId: session.id,
    parentId: options.parentId,
    secretHash: token.secretHash,
    createdAt: options.now,
    expiresAt,
  });
  return { token: token.token, expiresAt };
}

/** How a new session was authenticated: its `amr` (RFC 8176), `["pwd"]` unless given. */
export interface SessionAuthentication {
  amr?: string[] | undefined;
}

/** Opens a session for a user and issues its first refresh token; it was authenticated `now`. */
export async function startSession(
  tx: Tx,
  options: { userId: string; request: RequestInfo; now: Date; policy: SessionPolicy } & SessionAuthentication,
): Promise<{ session: SessionRow; refreshToken: IssuedRefreshToken }> {
  const { now, policy } = options;
  const [session] = await tx
    .insert(sessions)
    .values({
      userId: options.userId,
      createdAt: now,
      lastUsedAt: now,
      expiresAt: addSeconds(now, policy.sessionMaxAge),
      ip: options.request.ip,
      userAgent: options.request.userAgent,
      amr: options.amr ?? ['pwd'],
      authTime: now,
    })
    .returning();
  const refreshToken = await insertRefreshToken(tx, generateSplitToken(), session!, {
    parentId: null,
    now,
    ttl: policy.refreshTokenTtl,
  });
  return { session: session!, refreshToken };
}

/**
 * Spends a refresh token and issues its successor, in the caller's transaction, locking the
 * token's row: however many rotations of one token run at once, they queue on that lock and at most
 * one successor is ever written. A retry within the grace period, while the successor is still
 * unspent, gets that same successor back (it is derived, not stored). Any other reuse of a
 * spent token is a replay: the whole session is revoked.
 */
export async function rotateRefreshToken(
  tx: Tx,
  presented: string,
  options: { now: Date; policy: SessionPolicy },
): Promise<RotationResult> {
  const parts = parseSplitToken(presented);
  if (!parts) return { kind: 'rejected', reason: 'malformed' };
  const { now, policy } = options;
  const [row] = await tx.select().from(refreshTokens).where(eq(refreshTokens.id, parts.id)).for('update');
  if (!row) return { kind: 'rejected', reason: 'unknown' } as const;
  if (!secretMatches(parts.secret, row.secretHash)) return { kind: 'rejected', reason: 'bad_secret' } as const;
  // The user comes with the session: the new access token is theirs. The session is locked as
  // its update below would lock it (no key update: rows referencing it can still be written), so
  // a revocation committing meanwhile is read here and refused, not rotated past.
  const [found] = await tx
    .select({ session: sessions, user: users })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(eq(sessions.id, row.sessionId))
    .for('no key update', { of: sessions });
  if (!found || found.session.revokedAt) return { kind: 'rejected', reason: 'session_revoked' } as const;
  // Checked before anything is spent: a disabled user's token is refused, not consumed.
  if (!found.user.active) return { kind: 'rejected', reason: 'user_disabled' } as const;
  const { session, user } = found;
  if (row.expiresAt <= now || session.expiresAt <= now) return { kind: 'rejected', reason: 'expired' } as const;

  const successor = deriveSuccessor(policy.successorKey, parts);
  if (!row.rotatedAt) {
    await tx.update(refreshTokens).set({ rotatedAt: now }).where(eq(refreshTokens.id, row.id));
    await tx.update(sessions).set({ lastUsedAt: now }).where(eq(sessions.id, session.id));
    const refreshToken = await insertRefreshToken(tx, successor, session, {
      parentId: row.id,
      now,
      ttl: policy.refreshTokenTtl,
    });
    return { kind: 'rotated', session, user, refreshToken } as const;
  }

  const withinGrace = now <= addSeconds(row.rotatedAt, policy.refreshReuseGrace);
  const [live] = await tx.select().from(refreshTokens).where(eq(refreshTokens.id, successor.id));
  if (withinGrace && live && !live.rotatedAt && live.expiresAt > now) {
    return {
      kind: 'reissued',
      session,
      user,
      refreshToken: { token: successor.token, expiresAt: live.expiresAt },
    } as const;
  }
  await revokeSessionsWhere(tx, eq(sessions.id, session.id), now);
  return { kind: 'replayed', session } as const;
}

/**
 * Finds the live session a refresh token belongs to, when the token is genuine (spent or not)
 * and unexpired. Used by logout, where holding the token is the proof.
 */
export async function findSessionOfRefreshToken(
  db: Database | Tx,
  presented: string,
  now: Date,
): Promise<SessionRow | null> {
  const parts = parseSplitToken(presented);
  if (!parts) return null;
  const [row] = await db
    .select({ token: refreshTokens, session: sessions })
    .from(refreshTokens)
    .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
    .where(eq(refreshTokens.id, parts.id));
  if (!row || !secretMatches(parts.secret, row.token.secretHash)) return null;
  const { token, session } = row;
  if (token.expiresAt <= now || session.revokedAt || session.expiresAt <= now) return null;
  return session;
}

/** The session, if it is the user's, not revoked and not past its end. */
const liveSessionOf = (sessionId: string, userId: string, now: Date) =>
  and(eq(sessions.id, sessionId), eq(sessions.userId, userId), isNull(sessions.revokedAt), gt(sessions.expiresAt, now));

/** A change asked for by a session that was revoked or ended while the change waited for its user's lock. */
export class SessionEndedError extends Error {
  constructor() {
    super('the session ended while its change waited for the lock');
    this.name = 'SessionEndedError';
  }
}

/**
 * Locks the user's row for a change of a way in that one of their sessions asked for (factors,
 * password, linked identities: the lock every such change, and every sign-in's check for
 * factors, takes), then checks under it that the session is still live. A session revoked while
 * its change waited (the owner added a factor, or signed the others out) changes nothing:
 * SessionEndedError.
 */
export async function lockUserForSession(tx: Tx, claims: Pick<AccessClaims, 'sub' | 'sid'>, now: Date): Promise<UserRow> {
  const user = await lockUser(tx, claims.sub);
  const [live] = await tx.select({ id: sessions.id }).from(sessions).where(liveSessionOf(claims.sid, claims.sub, now));
  if (!user || !live) throw new SessionEndedError();
  return user;
}

/**
 * Records a (re-)authentication of a live session, in the caller's transaction: `auth_time`
 * becomes `now` and `amr` gains the factor just passed (an RFC 8176 value), at its end, unless
 * it has it; a factor other than the password clears the count of wrong second-factor proofs.
 * Null when the session is not the user's, revoked or past its end.
 */
export async function markSessionAuthenticated(
  tx: Tx,
  options: { sessionId: string; userId: string; factor: string; now: Date },
): Promise<SessionRow | null> {
  const { sessionId, userId, factor, now } = options;
  const amr = sql`case when ${factor}::text = any(${sessions.amr}) then ${sessions.amr} else array_append(${sessions.amr}, ${factor}::text) end`;
  const [row] = await tx
    .update(sessions)
    .set({ authTime: now, amr, ...(factor !== 'pwd' && { factorFailures: 0 }) })
    .where(liveSessionOf(sessionId, userId, now))
    .returning();
  return row ?? null;
}

/**
 * Counts one second-factor proof against a session BEFORE it is checked (a conditional write: of
 * concurrent proofs, at most `max` wrong ones are ever checked). False when the session has had
 * `max` wrong ones since it last passed a factor. (Whether it is live is markSessionAuthenticated's check.)
 */
export async function reserveFactorGuess(db: Database, options: { sessionId: string; userId: string; max: number }): Promise<boolean> {
  const { sessionId, userId, max } = options;
  const counted = await db
    .update(sessions)
    .set({ factorFailures: sql`${sessions.factorFailures} + 1` })
    .where(and(eq(sessions.id, sessionId), eq(sessions.userId, userId), lt(sessions.factorFailures, max)))
    .returning({ id: sessions.id });
  return counted.length === 1;
}

/** Gives back a guess reserveFactorGuess counted for a proof that could not be checked at all. */
export async function returnFactorGuess(db: Database, sessionId: string): Promise<void> {
  await db
    .update(sessions)
    .set({ factorFailures: sql`greatest(${sessions.factorFailures} - 1, 0)` })
    .where(eq(sessions.id, sessionId));
}

type Condition = ReturnType<typeof eq>;

async function revokeSessionsWhere(tx: Tx | Database, condition: Condition, now: Date): Promise<number> {
  const revoked = await tx
    .update(sessions)
    .set({ revokedAt: now })
    .where(and(condition, isNull(sessions.revokedAt)))
    .returning({ id: sessions.id });
  return revoked.length;
}

/** Revokes one session; its refresh tokens and access tokens stop working. Returns 1 or 0. */
export function revokeSession(tx: Tx | Database, sessionId: string, now: Date): Promise<number> {
  return revokeSessionsWhere(tx, eq(sessions.id, sessionId), now);
}

/** Revokes every live session of a user, but the one named in `except`; returns how many. */
export function revokeUserSessions(
  tx: Tx | Database,
  userId: string,
  now: Date,
  options: { except?: string } = {},
): Promise<number> {
  const condition = options.except
    ? and(eq(sessions.userId, userId), ne(sessions.id, options.except))!
    : eq(sessions.userId, userId);
  return revokeSessionsWhere(tx, condition, now);
}

/**
 * Signs a user out everywhere, in the caller's transaction: every session is revoked, and every
 * access token issued before `now` is refused (the user's cut-off). Returns how many sessions
 * were live. The one place "log out everywhere", a password change or reset, and disabling an
 * account end a user's sessions.
 */
export async function signOutEverywhere(tx: Tx, userId: string, now: Date): Promise<number> {
  await moveCutoff(tx, userId, now);
  return revokeUserSessions(tx, userId, now);
}

/**
 * Signs a user out everywhere and opens one new session, in the caller's transaction (after a
 * password change or reset). The new session starts at the cut-off, which admits it.
 */
export async function replaceUserSessions(
  tx: Tx,
  options: { userId: string; request: RequestInfo; now: Date; policy: SessionPolicy } & SessionAuthentication,
): Promise<{ session: SessionRow; refreshToken: IssuedRefreshToken; revokedSessions: number }> {
  const revokedSessions = await signOutEverywhere(tx, options.userId, options.now);
  const started = await startSession(tx, options);
  return { ...started, revokedSessions };
}

/** A user's live sessions (neither revoked nor past their absolute lifetime), newest first. */
export function listLiveSessions(db: Database | Tx, userId: string, now: Date): Promise<SessionRow[]> {
  return db
    .select()
    .from(sessions)
    .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt), gt(sessions.expiresAt, now)))
    .orderBy(desc(sessions.createdAt), desc(sessions.id));
}

/** Deletes sessions past their absolute lifetime and refresh tokens past their expiry. */
export async function purgeExpiredSessions(db: Database, now: Date): Promise<number> {
  const tokens = await db.delete(refreshTokens).where(lt(refreshTokens.expiresAt, now)).returning({ id: refreshTokens.id });
  const dead = await db.delete(sessions).where(lt(sessions.expiresAt, now)).returning({ id: sessions.id });
  return tokens.length + dead.length;
}
