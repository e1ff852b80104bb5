import { eq } from 'drizzle-orm';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Database, Tx } from '../db/client.js';
import { sessions, type SessionRow } from '../db/schema.js';
import { UserNotFoundError } from '../errors.js';
import { findUserById } from '../accounts/accounts.js';
import { listLiveSessions, revokeSession, revokeUserSessions, signOutEverywhere } from './sessions.js';
import type { RequestInfo } from '../request-info.js';

/** A signed-in user acting on sessions; `mayRevokeAny` when they hold `sessions:revoke`. */
export interface SessionActor {
  userId: string;
  request: RequestInfo;
  mayRevokeAny?: boolean;
}

/** Outcome of revoking one session: refused, or whether a live session was revoked by this call. */
export type SessionRevocation = { kind: 'forbidden' } | { kind: 'done'; revoked: boolean };

/** Listing and revoking sessions, for their owner and for holders of `sessions:revoke`. */
export function createSessionAdmin(deps: { db: Database; clock: Clock; audit: AuditLog }) {
  const { db, clock, audit } = deps;

  /** Runs a revocation and records it in the same transaction, when it revoked anything. */
  const revokeAndRecord = (
    actor: SessionActor,
    userId: string,
    revoke: (tx: Tx, now: Date) => Promise<number>,
    detail: (count: number) => Record<string, unknown>,
  ): Promise<number> =>
    db.transaction(async (tx) => {
      const count = await revoke(tx, clock.now());
      if (count > 0) {
        await audit.record(
          { type: 'session_revoked', userId, request: actor.request, detail: { ...detail(count), by: actor.userId } },
          tx,
        );
      }
      return count;
    });

  return {
    /** A user's live sessions, newest first. */
    listSessions(userId: string): Promise<SessionRow[]> {
      return listLiveSessions(db, userId, clock.now());
    },

    /** The user a session belongs to, or null for an unknown id (null: not a session id at all). */
    async ownerOf(id: string | null): Promise<string | null> {
      if (!id) return null;
      const [session] = await db.select({ userId: sessions.userId }).from(sessions).where(eq(sessions.id, id));
      return session?.userId ?? null;
    },

    /**
     * Revokes a session of the actor's, or anyone's with `mayRevokeAny`. Without it, a session
     * that is not theirs is refused whether or not it exists (so ids cannot be probed); null
     * (not a session id at all) is one that does not exist.
     */
    async revokeSession(actor: SessionActor, id: string | null): Promise<SessionRevocation> {
      const [session] = id ? await db.select().from(sessions).where(eq(sessions.id, id)) : [];
      if (session?.userId !== actor.userId && !actor.mayRevokeAny) return { kind: 'forbidden' };
      if (!session) return { kind: 'done', revoked: false };
      const revoked = await revokeAndRecord(
        actor,
        session.userId,
        (tx, now) => revokeSession(tx, session.id, now),
        () => ({ sessionId: session.id }),
      );
      return { kind: 'done', revoked: revoked > 0 };
    },

    /** Revokes every session of the actor's but `currentSessionId`; returns how many. */
    revokeOtherSessions(actor: SessionActor, currentSessionId: string): Promise<number> {
      return revokeAndRecord(
        actor,
        actor.userId,
        (tx, now) => revokeUserSessions(tx, actor.userId, now, { except: currentSessionId }),
        (count) => ({ count, kept: currentSessionId }),
      );
    },

    /**
     * Signs a user out everywhere: every session and every access token issued so far (the
     * caller checks `sessions:revoke`); returns how many sessions were live.
     */
    async revokeUserSessions(actor: SessionActor, userId: string | null): Promise<number> {
      if (!userId || !(await findUserById(db, userId))) throw new UserNotFoundError();
      return revokeAndRecord(actor, userId, (tx, now) => signOutEverywhere(tx, userId, now), (count) => ({ count }));
    },
  };
}

export type SessionAdmin = ReturnType<typeof createSessionAdmin>;
