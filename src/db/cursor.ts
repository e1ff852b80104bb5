import { and, asc, desc, eq, gt, lt, or, type AnyColumn, type SQL } from 'drizzle-orm';
import { InputError } from '../errors.js';
import { parseUuid } from '../ids.js';

/** A position in a list ordered by (createdAt, id): unique, so a cursor names one exact row. */
export interface CursorPosition {
  createdAt: Date;
  id: string;
}

/** The columns of a table a list is ordered by: (createdAt, id). A table with both can be passed as is. */
export interface KeysetColumns {
  createdAt: AnyColumn;
  id: AnyColumn;
}

/** Which way a list runs: 'asc' oldest first, 'desc' newest first. */
export type KeysetDirection = 'asc' | 'desc';

/** One page of a list, oldest- or newest-first by (createdAt, id). */
export interface Page<T> {
  items: T[];
  hasNextPage: boolean;
}

/** The opaque cursor string of a row. */
export function encodeCursor(row: CursorPosition): string {
  return Buffer.from(`${row.createdAt.toISOString()}|${row.id}`).toString('base64url');
}

/** Reads a cursor back, or throws InputError(field) when it is not one we issued. */
export function decodeCursor(cursor: string, field = 'after'): CursorPosition {
  const [iso, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(iso ?? '');
  if (!id || parseUuid(id) !== id || Number.isNaN(createdAt.getTime())) {
    throw new InputError(field, 'This cursor is not one this API issued.');
  }
  return { createdAt, id };
}

/** The ORDER BY of a list: (createdAt, id), both in its direction, so every row has one place. */
export function keysetOrder(columns: KeysetColumns, direction: KeysetDirection): SQL[] {
  const by = direction === 'asc' ? asc : desc;
  return [by(columns.createdAt), by(columns.id)];
}

/**
 * The rows that come after a cursor in a list ordered by keysetOrder(columns, direction): a
 * keyset condition, so a page costs the same however deep it is and rows inserted meanwhile
 * neither repeat nor shift the next page. Throws InputError('after') for a cursor we did not issue.
 */
export function keysetAfter(cursor: string, columns: KeysetColumns, direction: KeysetDirection): SQL {
  const { createdAt, id } = decodeCursor(cursor);
  const beyond = direction === 'asc' ? gt : lt;
  return or(beyond(columns.createdAt, createdAt), and(eq(columns.createdAt, createdAt), beyond(columns.id, id)))!;
}

/**
 * One page of `first` items: `fetchRows` is asked for one row more than that, so whether a next
 * page exists is known without counting.
 */
export async function fetchPage<T>(first: number, fetchRows: (limit: number) => PromiseLike<T[]>): Promise<Page<T>> {
  const rows = await fetchRows(first + 1);
  return { items: rows.slice(0, first), hasNextPage: rows.length > first };
}

/** Validates a page size. */
export function assertPageSize(first: number, max: number): void {
  if (!Number.isInteger(first) || first < 1 || first > max) {
    throw new InputError('first', `first must be between 1 and ${max}.`);
  }
}
