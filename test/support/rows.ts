import { count, eq } from 'drizzle-orm';
import { refreshTokens, sessions, users } from '../../src/db/schema.js';
import type { TestApp } from './app.js';

/** How many accounts exist in the test app's database. */
export async function countUsers(t: TestApp, email?: string): Promise<number> {
  const query = t.database.db.select({ n: count() }).from(users);
  const [row] = await (email === undefined ? query : query.where(eq(users.email, email)));
  return Number(row!.n);
}

/** The stored row of a user. */
export async function userRow(t: TestApp, userId: string) {
  const [row] = await t.database.db.select().from(users).where(eq(users.id, userId));
  if (!row) throw new Error(`no user ${userId}`);
  return row;
}

/** Every session of a user. */
export function sessionsOf(t: TestApp, userId: string) {
  return t.database.db.select().from(sessions).where(eq(sessions.userId, userId));
}

/** The id part of a refresh token `<id>.<secret>`. */
export const refreshTokenId = (token: string) => token.split('.')[0]!;

/** The stored row of a refresh token, or undefined. */
export async function refreshTokenRow(t: TestApp, token: string) {
  const [row] = await t.database.db.select().from(refreshTokens).where(eq(refreshTokens.id, refreshTokenId(token)));
  return row;
}

/** The stored rows of refresh tokens whose parent is the given token. */
export function childrenOf(t: TestApp, token: string) {
  return t.database.db.select().from(refreshTokens).where(eq(refreshTokens.parentId, refreshTokenId(token)));
}

/** The session a refresh token belongs to. */
export async function sessionOfRefreshToken(t: TestApp, token: string) {
  const row = await refreshTokenRow(t, token);
  if (!row) throw new Error('no such refresh token');
  const [session] = await t.database.db.select().from(sessions).where(eq(sessions.id, row.sessionId));
  return session!;
}
