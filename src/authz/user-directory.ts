import { and, count, gt, ilike, isNull, or, sql, type SQL } from 'drizzle-orm';
import type { Database } from '../db/client.js';
import { sessions, users, type UserRow } from '../db/schema.js';
import { assertPageSize, fetchPage, keysetAfter, keysetOrder, type Page } from '../db/cursor.js';

export const MAX_PAGE_SIZE = 100;


/** Escapes LIKE wildcards so a search for "a_b" matches that text literally. */
function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** One page of users, oldest first (by created_at, then id: stable under inserts), optionally filtered by a substring of email or name. */
export async function listUsers(
  db: Database,
  options: { first: number; after?: string | null; search?: string | null },
): Promise<Page<UserRow>> {
  assertPageSize(options.first, MAX_PAGE_SIZE);
  const conditions: (SQL | undefined)[] = [];
  if (options.after) conditions.push(keysetAfter(options.after, users, 'asc'));
  const search = options.search?.trim();
  if (search) {
    const pattern = likePattern(search.normalize('NFKC').toLowerCase());
    conditions.push(or(ilike(users.email, pattern), ilike(users.name, pattern)));
  }
  return fetchPage(options.first, (limit) =>
    db.select().from(users).where(and(...conditions)).orderBy(...keysetOrder(users, 'asc')).limit(limit),
  );
}

/** Counts of users, active users and live sessions. */
export async function loadAdminStats(db: Database, now: Date) {
  const [totals] = await db
    .select({ total: count(), active: sql<number>`count(*) filter (where ${users.active})`.mapWith(Number) })
    .from(users);
  const [live] = await db
    .select({ n: count() })
    .from(sessions)
    .where(and(isNull(sessions.revokedAt), gt(sessions.expiresAt, now)));
  return { totalUsers: totals?.total ?? 0, activeUsers: totals?.active ?? 0, activeSessions: live?.n ?? 0 };
}
