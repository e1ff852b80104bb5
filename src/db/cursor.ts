import { InputError } from '../errors.js';
import { parseUuid } from '../ids.js';

/** A position in a list ordered by (createdAt, id): unique, so a cursor names one exact row. */
export interface CursorPosition {
  createdAt: Date;
  id: string;
}


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

/** Validates a page size. */
export function assertPageSize(first: number, max: number): void {
  if (!Number.isInteger(first) || first < 1 || first > max) {
    throw new InputError('first', `first must be between 1 and ${max}.`);
  }
}
