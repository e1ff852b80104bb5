import { and, eq, type SQL } from 'drizzle-orm';
import { assertPageSize, fetchPage, keysetAfter, keysetOrder, type Page } from '../db/cursor.js';
import type { Database } from '../db/client.js';
import { authEvents, type AuthEventRow } from '../db/schema.js';
import { InputError } from '../errors.js';
import { AUTH_EVENT_TYPES } from './audit-log.js';

export const MAX_AUDIT_PAGE = 200;

/** One page of audit events, newest first (created_at, then id, both descending). */
async function listAuditEvents(
  db: Database,
  options: { first: number; after?: string | null; userId?: string | null; type?: string | null },
): Promise<Page<AuthEventRow>> {
  assertPageSize(options.first, MAX_AUDIT_PAGE);
  const conditions: (SQL | undefined)[] = [];
  if (options.after) conditions.push(keysetAfter(options.after, authEvents, 'desc'));
  if (options.userId) conditions.push(eq(authEvents.userId, options.userId));
  if (options.type) {
    if (!(AUTH_EVENT_TYPES as readonly string[]).includes(options.type)) {
      throw new InputError('type', `type must be one of ${AUTH_EVENT_TYPES.join(', ')}.`);
    }
    conditions.push(eq(authEvents.type, options.type));
  }
  return fetchPage(options.first, (limit) =>
    db.select().from(authEvents).where(and(...conditions)).orderBy(...keysetOrder(authEvents, 'desc')).limit(limit),
  );
}

/** Reading the audit log (auditEvents), for the API. */
export function createAuditQuery(db: Database) {
  return { list: (options: Parameters<typeof listAuditEvents>[1]) => listAuditEvents(db, options) };
}

export type AuditQuery = ReturnType<typeof createAuditQuery>;
