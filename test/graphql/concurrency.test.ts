import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessions, users } from '../../src/db/schema.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { onPostgres } from '../support/database.js';
import { holdInTransaction, waitForLockWaiters } from '../support/lock-waits.js';
import { GOOD_PASSWORD, ME, REGISTER, registerUser, uniqueEmail } from '../support/operations.js';
import { REFRESH } from '../support/operations.js';
import { childrenOf, refreshTokenId, refreshTokenRow, sessionOfRefreshToken } from '../support/rows.js';

// PGlite is a single connection and serializes everything, which would hide races: these run
// on the real PostgreSQL (`npm run test:pg`), where each request may get its own connection.
describe.runIf(onPostgres)('concurrency on PostgreSQL', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  const N = 10;

  /**
   * Opens enough pooled connections that the racing requests really run side by side: a cold
   * pool opens connections one by one, which would serialize the race by accident.
   */
  async function warmPool() {
    await Promise.all(Array.from({ length: N + 2 }, () => t.database.db.execute(sql`select pg_sleep(0.05)`)));
  }

  it('answers 10 concurrent refreshes of one token with one and the same successor', async () => {
    const session = await registerUser(t);
    await warmPool();
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) => t.gql(REFRESH, { token: session.refreshToken }, { ip: `198.51.100.${i + 1}` })),
    );
    for (const res of results) {
      expect(res.status).toBe(200);
      expect(res.errors).toBeUndefined();
      expect(res.data?.refresh.__typename).toBe('AuthPayload');
    }
    const successors = new Set(results.map((res) => res.data!.refresh.refreshToken));
    expect(successors.size).toBe(1);
    const [successor] = [...successors] as [string];
    expect(successor).not.toBe(session.refreshToken);

    const children = await childrenOf(t, session.refreshToken);
    expect(children).toHaveLength(1);
    expect(children[0]!.id).toBe(refreshTokenId(successor));
    expect((await refreshTokenRow(t, session.refreshToken))?.rotatedAt).not.toBeNull();
    expect((await sessionOfRefreshToken(t, session.refreshToken)).revokedAt).toBeNull();

    // Every access token handed out works, and the successor rotates normally.
    for (const res of results) {
      const me = await t.gql(ME, {}, { token: res.data!.refresh.accessToken });
      expect(me.data?.me?.id).toBe(session.userId);
    }
    const next = await t.gql(REFRESH, { token: successor });
    expect(next.data?.refresh.__typename).toBe('AuthPayload');
  });

  it('creates exactly one user from 10 concurrent registrations of one email', async () => {
    const email = uniqueEmail('race');
    await warmPool();
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        // Spellings that normalize alike race too.
        t.gql(REGISTER, { input: { email: i % 2 ? email.toUpperCase() : ` ${email} `, password: GOOD_PASSWORD } }),
      ),
    );
    for (const res of results) {
      expect(res.status).toBe(200);
      expect(res.errors).toBeUndefined();
    }
    const kinds = results.map((res) => res.data!.register.__typename).sort();
    expect(kinds.filter((k) => k === 'AuthPayload')).toHaveLength(1);
    expect(kinds.filter((k) => k === 'EmailTakenError')).toHaveLength(N - 1);
    for (const res of results) {
      if (res.data!.register.__typename === 'EmailTakenError') expect(res.data!.register.code).toBe('EMAIL_TAKEN');
    }
    const rows = await t.database.db.select().from(users).where(eq(users.email, email));
    expect(rows).toHaveLength(1);
  });

  it('revokes the session when two clients replay a spent token at once after the grace period', async () => {
    const session = await registerUser(t);
    const first = await t.gql(REFRESH, { token: session.refreshToken });
    const successor = first.data!.refresh;
    expect(successor.__typename).toBe('AuthPayload');
    t.clock.advance(t.config.refreshReuseGrace + 1);
    await warmPool();

    const results = await Promise.all([
      t.gql(REFRESH, { token: session.refreshToken }, { ip: '198.51.100.1' }),
      t.gql(REFRESH, { token: session.refreshToken }, { ip: '203.0.113.9' }),
    ]);
    for (const res of results) {
      expect(res.status).toBe(200);
      expect(res.errors).toBeUndefined();
      expect(res.data?.refresh).toMatchObject({ __typename: 'InvalidRefreshTokenError', code: 'INVALID_REFRESH_TOKEN' });
    }
    expect((await sessionOfRefreshToken(t, session.refreshToken)).revokedAt).not.toBeNull();
    const after = await t.gql(REFRESH, { token: successor.refreshToken });
    expect(after.data?.refresh.__typename).toBe('InvalidRefreshTokenError');
    const me = await t.gql(ME, {}, { token: successor.accessToken });
    expect(me.data?.me ?? null).toBeNull();
    expect(me.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('lets the successor and the replayed token race after the grace period without a second successor', async () => {
    const session = await registerUser(t);
    const first = (await t.gql(REFRESH, { token: session.refreshToken })).data!.refresh;
    t.clock.advance(t.config.refreshReuseGrace + 1);
    await warmPool();
    const [legit, replay] = await Promise.all([
      t.gql(REFRESH, { token: first.refreshToken }),
      t.gql(REFRESH, { token: session.refreshToken }),
    ]);
    expect(legit.errors).toBeUndefined();
    expect(replay.errors).toBeUndefined();
    expect(replay.data?.refresh.__typename).toBe('InvalidRefreshTokenError');
    // Whatever order they ran in, the session ends revoked and nothing issued in it still works.
    expect((await sessionOfRefreshToken(t, session.refreshToken)).revokedAt).not.toBeNull();
    if (legit.data?.refresh.__typename === 'AuthPayload') {
      const again = await t.gql(REFRESH, { token: legit.data.refresh.refreshToken });
      expect(again.data?.refresh.__typename).toBe('InvalidRefreshTokenError');
    }
    expect(await childrenOf(t, first.refreshToken)).toHaveLength(legit.data?.refresh.__typename === 'AuthPayload' ? 1 : 0);
  });

  it('refuses a refresh whose session is revoked while it waits, instead of answering tokens for it', async () => {
    const session = await registerUser(t);
    const { id: sessionId } = await sessionOfRefreshToken(t, session.refreshToken);
    // A revocation in flight on another connection (logout everywhere, a disable, a password
    // change all end sessions this way): the refresh meets it, and waits for it to commit.
    const revocation = await holdInTransaction({ t }, (tx) =>
      tx.update(sessions).set({ revokedAt: t.clock.now() }).where(eq(sessions.id, sessionId)),
    );
    const refreshed = t.gql(REFRESH, { token: session.refreshToken });
    expect(await waitForLockWaiters({ t }, 1, refreshed)).toBe(true);
    await revocation.release();

    const res = await refreshed;
    expect(res.errors).toBeUndefined();
    expect(res.data?.refresh).toMatchObject({ __typename: 'InvalidRefreshTokenError', code: 'INVALID_REFRESH_TOKEN' });
    expect(await childrenOf(t, session.refreshToken)).toHaveLength(0);
  });
});
