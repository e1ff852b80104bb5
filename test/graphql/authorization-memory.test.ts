/**
 * The memory an instance answers requests from: kept exact by the change feed, bounded, and
 * untouched by a change that was rolled back.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthorizationMemory } from '../../src/authz/authorization-memory.js';
import { createChangeFeed } from '../../src/db/change-feed.js';
import { users } from '../../src/db/schema.js';
import { createLogger } from '../../src/logger.js';
import { createTestApp, type TestApp } from '../support/app.js';
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
