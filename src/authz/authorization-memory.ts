import { eq, gt, inArray } from 'drizzle-orm';
import { findAccountById, type Account } from '../accounts/accounts.js';
import type { Clock } from '../clock.js';
import type { ChangeFeed } from '../db/change-feed.js';
import type { Database } from '../db/client.js';
import { ExactCache, type Source } from '../db/exact-cache.js';
import { revokedTokens, rolePermissions, sessions } from '../db/schema.js';
import { loadAccessOf, type Access } from './permissions.js';

/** Entries per cache (accounts, access, sessions): the users and sessions active lately. */
export const AUTHORIZATION_CACHE_SIZE = 10_000;

/** What a revocation check needs of a session. */
export interface SessionFacts {
  userId: string;
  createdAt: Date;
  revokedAt: Date | null;
  expiresAt: Date;
}

/**
 * What requests read about users, their access and their sessions, held in this instance's
 * memory and kept exact by the change feed: accounts, access and sessions in bounded caches that
 * each change empties of what it names; revoked access tokens as a set of those that have not
 * expired yet (a revoked token outlives its row in no case, so the set is as large as the
 * revocations of the last ACCESS_TOKEN_TTL). While the feed is not live every read goes to the
 * database.
 */
export function createAuthorizationMemory(options: {
  db: Database;
  clock: Clock;
  feed: ChangeFeed;
  size?: number;
}) {
  const { db, clock, feed } = options;
  const size = options.size ?? AUTHORIZATION_CACHE_SIZE;
  const accounts = new ExactCache<Account>(feed, size);
  const access = new ExactCache<Access>(feed, size);
  const roles = new ExactCache<{ permissions: string[] }>(feed, size);
  const sessionFacts = new ExactCache<SessionFacts>(feed, size);
  /** Revoked jti → the instant its token expires. */
  const revokedJtis = new Map<string, number>();
  let nextSweep = 0;

  const sweep = (now: number) => {
    if (now < nextSweep) return;
    nextSweep = now + 60_000;
    for (const [jti, expires] of revokedJtis) if (expires <= now) revokedJtis.delete(jti);
  };

  feed.subscribe({
    apply(change) {
      switch (change.kind) {
        case 'user':
          accounts.invalidate(change.id);
          access.invalidate(change.id);
          return;
        case 'session':
          sessionFacts.invalidate(change.id);
          return;
        case 'revoked_token':
          revokedJtis.set(change.jti, change.expiresAt.getTime());
          return;
        case 'role':
          roles.invalidate(change.name);
          // A user's access folds in their roles' permissions.
          access.clear();
          return;
        case 'viewer_event':
          // For the viewerEvents streams; the same change's u: and s: payloads invalidate.
          return;
      }
    },
    clear() {
      accounts.clear();
      access.clear();
      roles.clear();
      sessionFacts.clear();
      revokedJtis.clear();
    },
    async reload() {
      const rows = await db
        .select({ jti: revokedTokens.jti, expiresAt: revokedTokens.expiresAt })
        .from(revokedTokens)
        .where(gt(revokedTokens.expiresAt, clock.now()));
      for (const row of rows) revokedJtis.set(row.jti, row.expiresAt.getTime());
    },
  });

  return {
    /** Whether memory is trusted now (the feed is live). */
    live: () => feed.live(),
    /** Moves whenever trust in memory was lost or regained: a check spanning it must not use memory. */
    generation: () => feed.generation(),

    account: (id: string, onSource?: (source: Source) => void) =>
      accounts.get(
        id,
        () => findAccountById(db, id),
        onSource,
      ),

    accessOf: (userIds: readonly string[]) => access.getMany(userIds, (missing) => loadAccessOf(db, missing)),

    async permissionsOf(roleNames: readonly string[]): Promise<Map<string, string[]>> {
      const found = await roles.getMany(
        roleNames,
        async (missing) => {
          const rows = await db
            .select({ role: rolePermissions.role, permission: rolePermissions.permission })
            .from(rolePermissions)
            .where(inArray(rolePermissions.role, missing));
          const granted = new Map(missing.map((role) => [role, [] as string[]]));
          for (const row of rows) granted.get(row.role)!.push(row.permission);
          return new Map([...granted].map(([role, permissions]) => [role, { permissions: permissions.sort() }]));
        },
      );
      return new Map(roleNames.map((role) => [role, found.get(role)?.permissions ?? []]));
    },

    session: (id: string, onSource?: (source: Source) => void) =>
      sessionFacts.get(
        id,
        async () =>
          (
            await db
              .select({
                userId: sessions.userId,
                createdAt: sessions.createdAt,
                revokedAt: sessions.revokedAt,
                expiresAt: sessions.expiresAt,
              })
              .from(sessions)
              .where(eq(sessions.id, id))
          )[0] ?? null,
        onSource,
      ),

    /** Whether this jti was revoked; only meaningful while live. */
    tokenRevoked(jti: string, now: Date): boolean {
      sweep(now.getTime());
      const expires = revokedJtis.get(jti);
      return expires !== undefined && expires > now.getTime();
    },

    /** Entries held, for tests of the bounds and for metrics. */
    sizes: () => ({
      accounts: accounts.size,
      access: access.size,
      sessions: sessionFacts.size,
      revokedTokens: revokedJtis.size,
    }),
  };
}

export type AuthorizationMemory = ReturnType<typeof createAuthorizationMemory>;
