import { and, asc, count, eq, gt, ilike, isNull, or, sql, type SQL } from 'drizzle-orm';
import type { Database } from '../db/client.js';
import { sessions, users, type UserRow } from '../db/schema.js';
import { InputError } from '../errors.js';

export const MAX_PAGE_SIZE = 100;

export interface UserPage {
  users: UserRow[];
  hasNextPage: boolean;
  cursorOf(user: UserRow): string;
}

// Users are listed by (created_at, id): stable under inserts, and unique, so a cursor names
// one exact position.
function encodeCursor(user: Pick<UserRow, 'createdAt' | 'id'>): string {
  return Buffer.from(`${user.createdAt.toISOString()}|${user.id}`).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  const [iso, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(iso ?? '');
  if (!id || !/^[0-9a-f-]{36}$/.test(id) || Number.isNaN(createdAt.getTime())) {
    throw new InputError('after', 'This cursor is not one this API issued.');
  }
  return { createdAt, id };
}

/** Escapes LIKE wildcards so a search for "a_b" matches that text literally. */
function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** One page of users, oldest first, optionally filtered by a substring of email or name. */
export async function listUsers(
  db: Database,
  options: { first: number; after?: string | null; search?: string | null },
): Promise<UserPage> {
  if (!Number.isInteger(options.first) || options.first < 1 || options.first > MAX_PAGE_SIZE) {
    throw new InputError('first', `first must be between 1 and ${MAX_PAGE_SIZE}.`);
  }
  const conditions: (SQL | undefined)[] = [];
  if (options.after) {
    const { createdAt, id } = decodeCursor(options.after);
    conditions.push(or(gt(users.createdAt, createdAt), and(eq(users.createdAt, createdAt), gt(users.id, id))));
  }
  const search = options.search?.trim();
  if (search) {
    const pattern = likePattern(search.normalize('NFKC').toLowerCase());
    conditions.push(or(ilike(users.email, pattern), ilike(users.name, pattern)));
  }
  const rows = await db
    .select()
    .from(users)
    .where(and(...conditions))
    .orderBy(asc(users.createdAt), asc(users.id))
    .limit(options.first + 1);
  return { users: rows.slice(0, options.first), hasNextPage: rows.length > options.first, cursorOf: encodeCursor };
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
