/**
 * `users`: cursor pagination in (createdAt, id) order, stable when many users share one
 * createdAt (the test clock stands still), `search`, and validation of `first` and `after`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { count, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { users } from '../../src/db/schema.js';
import { createTestApp, type GraphQLResponse, type TestApp } from '../support/app.js';
import { expectRefused, registerAdmin, ROLES, USERS } from '../support/authz.js';
import { registerUser, type Session } from '../support/operations.js';

let t: TestApp;
let admin: Session;
beforeAll(async () => {
  t = await createTestApp();
  admin = await registerAdmin(t);
});
afterAll(() => t.close());

interface Node {
  id: string;
  email: string;
  name: string | null;
  createdAt: string;
}

async function page(variables: { first?: number; after?: string | null; search?: string }): Promise<GraphQLResponse> {
  return t.gql(USERS, variables, { token: admin.accessToken });
}

/** Walks every page of a search with `first`, following endCursor; returns the pages' nodes. */
async function walk(search: string, first: number): Promise<{ pages: Node[][]; hasNext: boolean[] }> {
  const pages: Node[][] = [];
  const hasNext: boolean[] = [];
  let after: string | null = null;
  for (let i = 0; i < 50; i++) {
    const res = await page({ first, after, search });
    expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
    const { edges, pageInfo } = res.data!.users;
    pages.push(edges.map((e: { node: Node }) => e.node));
    hasNext.push(pageInfo.hasNextPage);
    if (edges.length > 0) expect(pageInfo.endCursor).toBe(edges.at(-1).cursor);
    if (!pageInfo.hasNextPage) return { pages, hasNext };
    const seen = new Set(pages.slice(0, -1).flat().map((n) => n.id));
    const repeated = pages.at(-1)!.filter((n) => seen.has(n.id));
    expect(repeated, `page ${i + 1} repeats users of earlier pages`).toEqual([]);
    after = pageInfo.endCursor;
  }
  throw new Error('pagination did not end after 50 pages');
}

/** A marker no other user's email or name contains. */
const tag = () => `tag${randomBytes(4).toString('hex')}`;

/** Registers `n` users named `<marker> <i>`, advancing the clock `step` seconds between them. */
async function createUsers(marker: string, n: number, step: number): Promise<Session[]> {
  const created: Session[] = [];
  for (let i = 0; i < n; i++) {
    created.push(await registerUser(t, { name: `${marker} ${i}` }));
    if (step) t.clock.advance(step);
  }
  return created;
}

describe('users pagination', () => {
  it('pages through every user exactly once in created order with first: 3 and endCursor', async () => {
    const marker = tag();
    const created = await createUsers(marker, 7, 1);
    const { pages, hasNext } = await walk(marker, 3);
    expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
    expect(hasNext).toEqual([true, true, false]);
    expect(pages.flat().map((n) => n.id)).toEqual(created.map((s) => s.userId));
    const times = pages.flat().map((n) => n.createdAt);
    expect([...times].sort()).toEqual(times);
  });

  it('pages users created at the same instant stably: no duplicate, no gap, ordered by id', async () => {
    const marker = tag();
    const created = await createUsers(marker, 7, 0);
    const { pages, hasNext } = await walk(marker, 3);
    const ids = pages.flat().map((n) => n.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(created.map((s) => s.userId).sort());
    // With equal createdAt the order is by id (uuid order = lower-case hex order).
    expect(ids).toEqual(created.map((s) => s.userId).sort());
    expect(new Set(pages.flat().map((n) => n.createdAt)).size).toBe(1);
    expect(hasNext).toEqual([true, true, false]);
  });

  it('pages a mix of shared and distinct instants with every page size from 1 to 8', async () => {
    const marker = tag();
    const created: Session[] = [];
    for (const group of [3, 1, 4]) {
      created.push(...(await createUsers(marker, group, 0)));
      t.clock.advance(1);
    }
    // Expected: by createdAt group, then id within a group.
    const expected = [
      ...created.slice(0, 3).map((s) => s.userId).sort(),
      created[3]!.userId,
      ...created.slice(4).map((s) => s.userId).sort(),
    ];
    for (let first = 1; first <= 8; first++) {
      const { pages, hasNext } = await walk(marker, first);
      expect(pages.flat().map((n) => n.id), `first: ${first}`).toEqual(expected);
      expect(hasNext.at(-1)).toBe(false);
      expect(pages.length, `first: ${first}`).toBe(Math.ceil(8 / first));
    }
  });

  it('answers hasNextPage false on a last page that is exactly full', async () => {
    const marker = tag();
    await createUsers(marker, 6, 1);
    const { pages, hasNext } = await walk(marker, 3);
    expect(pages.map((p) => p.length)).toEqual([3, 3]);
    expect(hasNext).toEqual([true, false]);
  });

  it('answers an empty page with endCursor null after the last cursor', async () => {
    const marker = tag();
    await createUsers(marker, 2, 1);
    const first = await page({ first: 5, search: marker });
    expect(first.data?.users.pageInfo.hasNextPage).toBe(false);
    const next = await page({ first: 5, search: marker, after: first.data?.users.pageInfo.endCursor });
    expect(next.errors).toBeUndefined();
    expect(next.data?.users).toEqual({ edges: [], pageInfo: { hasNextPage: false, endCursor: null } });
  });

  it('lists the whole directory oldest first with the default page size of 20', async () => {
    const [total] = await t.database.db.select({ n: count() }).from(users);
    const res = await page({});
    expect(res.errors).toBeUndefined();
    const nodes: Node[] = res.data?.users.edges.map((e: { node: Node }) => e.node);
    expect(nodes).toHaveLength(Math.min(20, Number(total!.n)));
    expect(res.data?.users.pageInfo.hasNextPage).toBe(Number(total!.n) > 20);
    const keys = nodes.map((n) => [n.createdAt, n.id].join(' '));
    expect([...keys].sort()).toEqual(keys);
    // The admin was the first user of this database.
    expect(nodes[0]!.createdAt).toBe(nodes.find((n) => n.id === admin.userId)?.createdAt);
  });

  it('keeps its place when users are added between pages', async () => {
    const marker = tag();
    const created = await createUsers(marker, 4, 1);
    const first = await page({ first: 2, search: marker });
    const later = await createUsers(marker, 2, 1);
    const rest = await walk(marker, 100);
    const second = await page({ first: 10, search: marker, after: first.data?.users.pageInfo.endCursor });
    expect(second.data?.users.edges.map((e: { node: Node }) => e.node.id)).toEqual(
      [...created.slice(2), ...later].map((s) => s.userId),
    );
    expect(rest.pages.flat()).toHaveLength(6);
  });

  it('pages users whose stored createdAt has sub-millisecond precision without duplicates or gaps', async () => {
    // Rows written outside the app (SQL import, the column default now()) carry microseconds.
    const marker = tag();
    const rows = await t.database.db
      .insert(users)
      .values(
        Array.from({ length: 5 }, (_, i) => ({
          email: `${marker}-${i}@example.com`,
          passwordHash: 'x',
          name: `${marker} ${i}`,
          createdAt: new Date('2030-01-01T00:00:00.000Z'),
        })),
      )
      .returning({ id: users.id });
    // Give every row the same instant with microseconds, as now() would.
    await t.database.db.execute(
      sql`update users set created_at = '2030-01-01 00:00:00.123456+00' where email like ${`${marker}-%`}`,
    );
    const { pages } = await walk(marker, 2);
    const ids = pages.flat().map((n) => n.id);
    expect(ids).toEqual(rows.map((r) => r.id).sort());
  });
});

describe('users search', () => {
  it('finds users by a substring of their email, case-insensitively', async () => {
    const marker = tag();
    const a = await registerUser(t, { email: `${marker}-alice@example.com` });
    await registerUser(t, { email: `other-${randomBytes(4).toString('hex')}@example.com` });
    const res = await page({ search: `${marker.toUpperCase()}-ALI` });
    expect(res.errors).toBeUndefined();
    expect(res.data?.users.edges.map((e: { node: Node }) => e.node)).toEqual([
      expect.objectContaining({ id: a.userId, email: a.email }),
    ]);
  });

  it('finds users by a substring of their name, case-insensitively', async () => {
    const marker = tag();
    const a = await registerUser(t, { name: `Grace ${marker} Hopper` });
    t.clock.advance(1);
    const b = await registerUser(t, { name: `Ada ${marker} Lovelace` });
    const res = await page({ search: `${marker.toUpperCase()} hOPP` });
    expect(res.data?.users.edges.map((e: { node: Node }) => e.node.id)).toEqual([a.userId]);
    const both = await page({ search: marker.toUpperCase() });
    expect(both.data?.users.edges.map((e: { node: Node }) => e.node.id)).toEqual([a.userId, b.userId]);
  });

  it("matches '%' in a search literally, not as a wildcard", async () => {
    const marker = tag();
    const percent = await registerUser(t, { name: `${marker} 100% sure` });
    await registerUser(t, { name: `${marker} 1000 sure` });
    const res = await page({ search: `${marker} 100%` });
    expect(res.errors).toBeUndefined();
    expect(res.data?.users.edges.map((e: { node: Node }) => e.node.id)).toEqual([percent.userId]);
    const bare = await page({ search: '%', first: 100 });
    const ids: string[] = bare.data?.users.edges.map((e: { node: Node }) => e.node.id);
    expect(ids).toEqual([percent.userId]);
  });

  it("matches '_' in a search literally, not as a wildcard", async () => {
    const marker = tag();
    const underscore = await registerUser(t, { name: `${marker} a_b` });
    await registerUser(t, { name: `${marker} axb` });
    const res = await page({ search: `${marker} a_b` });
    expect(res.errors).toBeUndefined();
    expect(res.data?.users.edges.map((e: { node: Node }) => e.node.id)).toEqual([underscore.userId]);
  });

  it('matches a backslash in a search literally', async () => {
    const marker = tag();
    const slash = await registerUser(t, { name: `${marker} a\\b` });
    await registerUser(t, { name: `${marker} ab` });
    const res = await page({ search: `${marker} a\\b` });
    expect(res.errors).toBeUndefined();
    expect(res.data?.users.edges.map((e: { node: Node }) => e.node.id)).toEqual([slash.userId]);
  });

  it('answers an empty page for a search nobody matches', async () => {
    const res = await page({ search: tag() });
    expect(res.errors).toBeUndefined();
    expect(res.data?.users).toEqual({ edges: [], pageInfo: { hasNextPage: false, endCursor: null } });
  });
});

describe('users input validation', () => {
  for (const first of [0, -1, 101]) {
    it(`answers INVALID_INPUT on field first for first: ${first}`, async () => {
      const res = await page({ first });
      const error = expectRefused(res, 'users', 'INVALID_INPUT', { nullable: false });
      expect(error.extensions?.field).toBe('first');
    });
  }

  it('accepts first: 1 and first: 100', async () => {
    for (const first of [1, 100]) {
      const res = await page({ first });
      expect(res.errors, `first: ${first}`).toBeUndefined();
      expect(res.data?.users.edges.length).toBeGreaterThan(0);
    }
  });

  for (const [label, after] of [
    ['garbage', 'garbage!!'],
    ['base64 of text without a separator', Buffer.from('hello').toString('base64url')],
    ['a cursor with a bad date', Buffer.from(`not-a-date|${randomUUID()}`).toString('base64url')],
    ['a cursor with a bad id', Buffer.from(`${new Date().toISOString()}|not-a-uuid`).toString('base64url')],
  ] as const) {
    it(`answers INVALID_INPUT on field after for ${label}`, async () => {
      const res = await page({ first: 3, after });
      const error = expectRefused(res, 'users', 'INVALID_INPUT', { nullable: false });
      expect(error.extensions?.field).toBe('after');
    });
  }
});

describe('users: a fixed number of queries however many rows', () => {
  const WITH_ACCESS = `query($first: Int) { users(first: $first) { edges { node { id roles permissions } } } }`;

  it('loads the roles and permissions of a whole page in one lookup, and answers each user with their own', async () => {
    const extra = await registerAdmin(t);
    const lookups = vi.spyOn(t.services.directory, 'accessOf');
    try {
      for (const first of [2, 30]) {
        lookups.mockClear();
        const res = await t.gql(WITH_ACCESS, { first }, { token: admin.accessToken });
        expect(res.errors).toBeUndefined();
        const nodes = res.data!.users.edges.map((e: { node: { id: string; roles: string[] } }) => e.node);
        expect(nodes.length).toBe(Math.min(first, nodes.length));
        expect(nodes.length).toBeGreaterThan(1);
        // One lookup for the page (the viewer's own access is loaded once, before it).
        expect(lookups.mock.calls.filter(([ids]) => ids.length > 1 || !ids.includes(admin.userId))).toHaveLength(1);
        for (const node of nodes) expect(node.roles).toEqual(node.id === admin.userId || node.id === extra.userId ? ['admin', 'user'] : ['user']);
      }
    } finally {
      lookups.mockRestore();
    }
  });

  it('loads the permissions of every role in one lookup', async () => {
    const lookups = vi.spyOn(t.services.directory, 'permissionsOf');
    try {
      const res = await t.gql(ROLES, {}, { token: admin.accessToken });
      expect(res.errors).toBeUndefined();
      expect(res.data!.roles.length).toBeGreaterThan(1);
      expect(lookups).toHaveBeenCalledTimes(1);
      const admins = res.data!.roles.find((r: { name: string }) => r.name === 'admin');
      expect(admins.permissions).toEqual(['audit:read', 'roles:grant', 'sessions:revoke', 'users:read', 'users:write']);
    } finally {
      lookups.mockRestore();
    }
  });
});
