/**
 * The memory an instance answers requests from: kept exact by the change feed, bounded, and
 * untouched by a change that was rolled back.
 */
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthorizationMemory } from '../../src/authz/authorization-memory.js';
import { createChangeFeed, type ChangeFeed } from '../../src/db/change-feed.js';
import { ExactCache } from '../../src/db/exact-cache.js';
import { users } from '../../src/db/schema.js';
import { createLogger } from '../../src/logger.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { onPostgres } from '../support/database.js';
import { ME_ID, registerUser } from '../support/operations.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t?.close();
});

async function revocationChecks(source: 'memory' | 'database'): Promise<number> {
  const metric = await t.services.metrics.registry.getSingleMetric('authgraph_revocation_checks_total')!.get();
  return metric.values.find((v) => v.labels.source === source)?.value ?? 0;
}

describe('the memory of an instance', () => {
  it('answers a token it has checked once without the database', async () => {
    const session = await registerUser(t);
    expect(t.services.changes.live()).toBe(true);
    await t.gql(ME_ID, {}, { token: session.accessToken });
    const [memory, database] = [await revocationChecks('memory'), await revocationChecks('database')];
    for (let i = 0; i < 5; i += 1) {
      const res = await t.gql(ME_ID, {}, { token: session.accessToken });
      expect(res.data?.me).toEqual({ id: session.userId });
    }
    expect(await revocationChecks('memory')).toBe(memory + 5);
    expect(await revocationChecks('database')).toBe(database);
  });

  it('keeps what it held when a change to it is rolled back, and forgets it when one commits', async () => {
    const session = await registerUser(t);
    await t.gql(ME_ID, {}, { token: session.accessToken });
    await t.database.db
      .transaction(async (tx) => {
        await tx.update(users).set({ active: false }).where(eq(users.id, session.userId));
        throw new Error('roll back');
      })
      .catch(() => {});
    await t.services.changes.sync();
    const memory = await revocationChecks('memory');
    expect((await t.gql(ME_ID, {}, { token: session.accessToken })).data?.me).toEqual({ id: session.userId });
    expect(await revocationChecks('memory')).toBe(memory + 1);

    await t.database.db.update(users).set({ name: 'renamed' }).where(eq(users.id, session.userId));
    await t.services.changes.sync();
    const database = await revocationChecks('database');
    expect((await t.gql(`query { me { name } }`, {}, { token: session.accessToken })).data?.me).toEqual({ name: 'renamed' });
    expect(await revocationChecks('database')).toBe(database + 1);
  });

  it('holds no more entries than its bound however many users are read', async () => {
    const feed = createChangeFeed({ database: t.database, db: t.database.db, logger: createLogger('silent') });
    const memory = createAuthorizationMemory({ db: t.database.db, clock: t.clock, feed, size: 3 });
    await feed.start();
    try {
      const ids = (await t.database.db.select({ id: users.id }).from(users)).map((row) => row.id);
      for (let i = ids.length; i < 8; i += 1) ids.push((await registerUser(t)).userId);
      for (const id of ids) expect((await memory.account(id))?.id).toBe(id);
      await memory.accessOf(ids);
      expect(memory.sizes().accounts).toBe(3);
      expect(memory.sizes().access).toBe(3);
    } finally {
      await feed.close();
    }
  });

  it('keeps a revoked jti only until its token would have expired', async () => {
    const session = await registerUser(t);
    await t.gql(`mutation($r: String) { logout(refreshToken: $r) }`, { r: session.refreshToken }, { token: session.accessToken });
    const held = t.services.memory.sizes().revokedTokens;
    expect(held).toBeGreaterThan(0);
    t.clock.advance(t.config.accessTokenTtl + 61);
    // The sweep runs as checks happen.
    expect(t.services.memory.tokenRevoked('any', t.clock.now())).toBe(false);
    expect(t.services.memory.sizes().revokedTokens).toBe(0);
  });
});

/**
 * A read of the database that is still running when a change to what it read commits, and whose
 * notification arrives before the read returns, may hold the state from before the change. It is
 * answered (the request began before the change) but never kept. On PostgreSQL the change comes
 * from another pooled connection and its notification through the LISTEN connection.
 */
describe('a read that a change overtook', () => {
  /**
   * Reads a user's name through a fresh cache, holding the first read after its query returned
   * while `meanwhile` runs; then reads again. How many reads reached the database tells whether
   * the first was kept.
   */
  async function readAcross(meanwhile: (feed: ChangeFeed, userId: string) => Promise<void>) {
    const { userId } = await registerUser(t);
    await t.database.db.update(users).set({ name: 'before' }).where(eq(users.id, userId));
    const feed = createChangeFeed({ database: t.database, db: t.database.db, logger: createLogger('silent') });
    const cache = new ExactCache<{ name: string | null }>(feed, 10);
    feed.subscribe({
      apply: (change) => {
        if (change.kind === 'user') cache.invalidate(change.id);
      },
      clear: () => cache.clear(),
    });
    await feed.start();
    try {
      let reads = 0;
      let release!: () => void;
      let queried!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const done = new Promise<void>((resolve) => (queried = resolve));
      const load = async () => {
        reads += 1;
        const [row] = await t.database.db.select({ name: users.name }).from(users).where(eq(users.id, userId));
        queried();
        await gate;
        return row ?? null;
      };
      await feed.sync();
      const held = cache.get(userId, load);
      await done;
      await meanwhile(feed, userId);
      await feed.sync();
      expect(feed.live()).toBe(true);
      release();
      const first = await held;
      const second = await cache.get(userId, load);
      return { first, second, reads };
    } finally {
      await feed.close();
    }
  }

  it('answers what it read but keeps none of it, so the next read sees the change', async () => {
    const { first, second, reads } = await readAcross(async (_feed, userId) => {
      await t.database.db.update(users).set({ name: 'after' }).where(eq(users.id, userId));
    });
    expect(first).toEqual({ name: 'before' });
    expect(second).toEqual({ name: 'after' });
    expect(reads).toBe(2);
  });

  it('keeps a read that no change overtook', async () => {
    const { reads } = await readAcross(async () => {});
    expect(reads).toBe(1);
  });

  it.runIf(onPostgres)('keeps no read that the loss of the listener overtook, even once it is back', async () => {
    // sync() in readAcross resolves once the listener is back and memory trusted again.
    const { reads } = await readAcross(async (feed) => {
      await t.database.db.execute(sql`select pg_terminate_backend(${feed.listenerPid()})`);
    });
    expect(reads).toBe(2);
  });
});
