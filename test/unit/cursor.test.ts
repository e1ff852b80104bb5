import { describe, expect, it } from 'vitest';
import { users } from '../../src/db/schema.js';
import { decodeCursor, encodeCursor, fetchPage, keysetAfter } from '../../src/db/cursor.js';
import { InputError } from '../../src/errors.js';

describe('fetchPage', () => {
  it('asks for one row more than the page and reports a next page when it comes back', async () => {
    const asked: number[] = [];
    const page = await fetchPage(3, async (limit) => {
      asked.push(limit);
      return [1, 2, 3, 4];
    });
    expect(asked).toEqual([4]);
    expect(page).toEqual({ items: [1, 2, 3], hasNextPage: true });
  });

  it('reports no next page when the rows end within the page', async () => {
    expect(await fetchPage(3, async () => [1, 2, 3])).toEqual({ items: [1, 2, 3], hasNextPage: false });
    expect(await fetchPage(3, async () => [])).toEqual({ items: [], hasNextPage: false });
  });
});

describe('keysetAfter', () => {
  it('reads a cursor this API issued', () => {
    const position = { createdAt: new Date('2030-01-01T00:00:00.123Z'), id: '00000000-0000-4000-8000-00000000000a' };
    expect(decodeCursor(encodeCursor(position))).toEqual(position);
    expect(() => keysetAfter(encodeCursor(position), users, 'asc')).not.toThrow();
  });

  it('refuses a cursor it did not issue with InputError on after', () => {
    for (const bad of ['', 'not-a-cursor', Buffer.from('2030-01-01T00:00:00Z|x').toString('base64url')]) {
      let error: unknown;
      try {
        keysetAfter(bad, users, 'desc');
      } catch (err) {
        error = err;
      }
      expect(error, bad).toBeInstanceOf(InputError);
      expect((error as InputError).field).toBe('after');
    }
  });
});
