import { and, asc, count, gt, ilike, isNull, or, sql, type SQL } from 'drizzle-orm';
import { ACCOUNT_COLUMNS, type Account } from '../accounts/accounts.js';
import { normalizeEmail } from '../accounts/email.js';
import type { Clock } from '../clock.js';
import type { Database } from '../db/client.js';
import { roles, sessions, users } from '../db/schema.js';
import { assertPageSize, fetchPage, keysetAfter, keysetOrder, type Page } from '../db/cursor.js';
import type { AuthorizationMemory } from './authorization-memory.js';

export const MAX_PAGE_SIZE = 100;

/** Escapes LIKE wildcards so a search for "a_b" matches that text literally. */
function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/**
 * Everything the API reads about users and roles: resolvers ask this service, never a table.
 * Users come without their password hash.
 */
export function createUserDirectory(deps: { db: Database; clock: Clock; memory: AuthorizationMemory }) {
  const { db, clock, memory } = deps;
  return {
    /** A user by (parsed) id, or null: from this instance's memory, kept exact by the change feed. */
    userById: (id: string): Promise<Account | null> => memory.account(id),

    /** Users' roles and permissions as stored now, those not in memory in one query (every id is in the map). */
    accessOf: (userIds: readonly string[]) => memory.accessOf(userIds),

    /** One page of users, oldest first (by created_at, then id: stable under inserts), optionally filtered by a substring of email or name. */
    listUsers(options: { first: number; after?: string | null; search?: string | null }): Promise<Page<Account>> {
      assertPageSize(options.first, MAX_PAGE_SIZE);
      const conditions: (SQL | undefined)[] = [];
      if (options.after) conditions.push(keysetAfter(options.after, users, 'asc'));
      // Folded as stored emails are, so a search for "ADA@" finds ada@…; ilike ignores case in names.
      const search = normalizeEmail(options.search ?? '');
      if (search) {
        const pattern = likePattern(search);
        conditions.push(or(ilike(users.email, pattern), ilike(users.name, pattern)));
      }
      return fetchPage(options.first, (limit) =>
        db.select(ACCOUNT_COLUMNS).from(users).where(and(...conditions)).orderBy(...keysetOrder(users, 'asc')).limit(limit),
      );
    },

    /** Counts of users, active users and live sessions. */
    async adminStats() {
      const [totals] = await db
        .select({ total: count(), active: sql<number>`count(*) filter (where ${users.active})`.mapWith(Number) })
        .from(users);
      const [live] = await db
        .select({ n: count() })
        .from(sessions)
        .where(and(isNull(sessions.revokedAt), gt(sessions.expiresAt, clock.now())));
      return { totalUsers: totals?.total ?? 0, activeUsers: totals?.active ?? 0, activeSessions: live?.n ?? 0 };
    },

    /** Every role, by name. */
    roles: () => db.select().from(roles).orderBy(asc(roles.name)),

    /** The permissions each of these roles grants, sorted, those not in memory in one query (every role is in the map). */
    permissionsOf: (roleNames: readonly string[]) => memory.permissionsOf(roleNames),
  };
}
