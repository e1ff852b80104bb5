/**
 * Two admins demoting (or disabling) each other at the same moment must not leave the
 * installation without an active admin: exactly one change wins, the other is LAST_ADMIN.
 * Real PostgreSQL only: PGlite runs one statement at a time, so nothing there is concurrent.
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type GraphQLResponse, type TestApp } from '../support/app.js';
import { activeAdminIds, registerAdmin, REVOKE_ROLE, SET_USER_ACTIVE } from '../support/authz.js';
import { onPostgres } from '../support/database.js';
import type { Session } from '../support/operations.js';

const ROUNDS = 5;

describe.runIf(onPostgres)('concurrent changes to the set of admins (PostgreSQL)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t?.close());

  /** Two fresh admins, and no other active admin in the database. */
  async function twoAdminsOnly(): Promise<[Session, Session]> {
    const a = await registerAdmin(t);
    const b = await registerAdmin(t);
    for (const id of await activeAdminIds(t)) {
      if (id !== a.userId && id !== b.userId) await t.services.roleAdmin.revokeRole({ kind: 'operator' }, id, 'admin');
    }
    expect(await activeAdminIds(t)).toEqual([a.userId, b.userId].sort());
    return [a, b];
  }

  /** Advisory-lock requests waiting (not granted) in this test's database. */
  async function waitingAdvisoryLocks(): Promise<number> {
    const rows = (await t.database.db.execute(
      sql`select count(*)::int as n from pg_locks l join pg_database d on d.oid = l.database
          where l.locktype = 'advisory' and not l.granted and d.datname = current_database()`,
    )) as unknown as { n: number }[];
    return rows[0]!.n;
  }

  /**
   * Runs both operations while the admin-set lock is held by the test, and lets them go only
   * once both wait for it: both have then passed authorization as admins, and the lock alone
   * decides the race.
   */
  async function raceAtTheLock(run: () => Promise<GraphQLResponse[]>): Promise<GraphQLResponse[]> {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let locked!: () => void;
    const holding = new Promise<void>((resolve) => (locked = resolve));
    const holder = t.database.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext('authgraph:admin-set'))`);
      locked();
      await gate;
    });
    await holding;
    const results = run();
    try {
      const deadline = Date.now() + 15_000;
      while ((await waitingAdvisoryLocks()) < 2) {
        if (Date.now() > deadline) throw new Error('the two changes never both waited for the admin-set lock');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      open();
      await holder;
    }
    return results;
  }

  function outcome(results: GraphQLResponse[], field: string) {
    const ok = results.filter((r) => r.errors === undefined && r.data?.[field]);
    const failed = results.filter((r) => r.errors !== undefined);
    return { ok, failed, codes: failed.map((r) => r.errors![0]!.extensions?.code) };
  }

  for (let round = 1; round <= ROUNDS; round++) {
    it(`lets exactly one of two admins demoting each other win, the other LAST_ADMIN (round ${round})`, async () => {
      const [a, b] = await twoAdminsOnly();
      const results = await raceAtTheLock(() =>
        Promise.all([
          t.gql(REVOKE_ROLE, { userId: b.userId, role: 'admin' }, { token: a.accessToken }),
          t.gql(REVOKE_ROLE, { userId: a.userId, role: 'admin' }, { token: b.accessToken }),
        ]),
      );
      const { ok, failed, codes } = outcome(results, 'revokeRole');
      expect(ok, JSON.stringify(results)).toHaveLength(1);
      expect(failed).toHaveLength(1);
      expect(codes).toEqual(['LAST_ADMIN']);
      expect(failed[0]!.errors![0]!.path).toEqual(['revokeRole']);
      const survivor = results[0] === ok[0] ? a : b;
      expect(await activeAdminIds(t)).toEqual([survivor.userId]);
    });
  }

  for (let round = 1; round <= ROUNDS; round++) {
    it(`lets exactly one of two admins disabling each other win, the other LAST_ADMIN (round ${round})`, async () => {
      const [a, b] = await twoAdminsOnly();
      const results = await raceAtTheLock(() =>
        Promise.all([
          t.gql(SET_USER_ACTIVE, { userId: b.userId, active: false }, { token: a.accessToken }),
          t.gql(SET_USER_ACTIVE, { userId: a.userId, active: false }, { token: b.accessToken }),
        ]),
      );
      const { ok, codes } = outcome(results, 'setUserActive');
      expect(ok, JSON.stringify(results)).toHaveLength(1);
      expect(codes).toEqual(['LAST_ADMIN']);
      const survivor = results[0] === ok[0] ? a : b;
      expect(await activeAdminIds(t)).toEqual([survivor.userId]);
    });
  }

  it('lets exactly one win when one admin demotes the other while being disabled by them', async () => {
    const [a, b] = await twoAdminsOnly();
    const results = await raceAtTheLock(() =>
      Promise.all([
        t.gql(REVOKE_ROLE, { userId: b.userId, role: 'admin' }, { token: a.accessToken }),
        t.gql(SET_USER_ACTIVE, { userId: a.userId, active: false }, { token: b.accessToken }),
      ]),
    );
    const succeeded = results.filter((r) => r.errors === undefined);
    expect(succeeded, JSON.stringify(results)).toHaveLength(1);
    expect(results.flatMap((r) => r.errors ?? []).map((e) => e.extensions?.code)).toEqual(['LAST_ADMIN']);
    expect(await activeAdminIds(t)).toHaveLength(1);
  });

  for (let round = 1; round <= ROUNDS; round++) {
    it(`leaves exactly one active admin when two admins demote each other unsynchronized (round ${round})`, async () => {
      const [a, b] = await twoAdminsOnly();
      const results = await Promise.all([
        t.gql(REVOKE_ROLE, { userId: b.userId, role: 'admin' }, { token: a.accessToken }),
        t.gql(REVOKE_ROLE, { userId: a.userId, role: 'admin' }, { token: b.accessToken }),
      ]);
      const { ok, codes } = outcome(results, 'revokeRole');
      expect(ok, JSON.stringify(results)).toHaveLength(1);
      // LAST_ADMIN when the loser was authorized before the winner committed (the usual case);
      // FORBIDDEN when its authorization already saw itself demoted. Never a second success.
      expect(codes).toHaveLength(1);
      expect(['LAST_ADMIN', 'FORBIDDEN']).toContain(codes[0]);
      expect(await activeAdminIds(t)).toHaveLength(1);
    });
  }
});
