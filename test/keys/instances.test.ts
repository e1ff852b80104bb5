import { decodeProtectedHeader } from 'jose';
import { and, eq, gte, like } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { authEvents, signingKeys } from '../../src/db/schema.js';
import type { KeyChange } from '../../src/tokens/key-store.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { onPostgres, openTestDatabase, OWN_DATABASE_TIMEOUT } from '../support/database.js';
import { ME_ID, REFRESH_BRIEF, registerUser, type Session } from '../support/operations.js';

/** Pre-publication 2 × 5 = 10 s, a rotation every 20 s, retention 10 + 5 = 15 s. */
const ENV = { JWT_SECRET: '', JWKS_MAX_AGE: '5', KEY_ROTATION_INTERVAL: '20', ACCESS_TOKEN_TTL: '10' };
/** How long another instance may take to hear of a change (no periodic reload runs in tests). */
const NOTIFIED = { timeout: 10_000, interval: 50 };

/** Two instances of the server on one database, on clocks that show the same instant. */
let a: TestApp;
let b: TestApp;
let session: Session;
beforeAll(async () => {
  a = await createTestApp(ENV);
  b = await createTestApp(ENV, a.database);
  a.clock.advance((b.clock.now().getTime() - a.clock.now().getTime()) / 1000);
  session = await registerUser(a);
});
afterAll(async () => {
  await b?.close();
  await a?.close();
});

/**
 * The clocks go back to where they started after each test (test/support/setup.ts), but the key
 * set does not: each test goes on from the furthest instant any test reached.
 */
let furthest = 0;
const now = () => a.clock.now().getTime();
function advanceTo(instant: number): void {
  for (const app of [a, b]) app.clock.advance((instant - app.clock.now().getTime()) / 1000);
  furthest = Math.max(furthest, instant);
}
beforeEach(() => {
  if (furthest > now()) advanceTo(furthest);
  expect(b.clock.now().getTime()).toBe(now());
});

const kidOf = (token: string) => decodeProtectedHeader(token).kid!;

/** The kids an instance's GET /.well-known/jwks.json lists: the current key first. */
async function publishedKids(app: TestApp): Promise<string[]> {
  const res = await app.app.fetch('http://authgraph.test/.well-known/jwks.json', {}, { req: { socket: { remoteAddress: '127.0.0.1' } } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { keys: { kid: string }[] }).keys.map((key) => key.kid);
}

/** A fresh access token from an instance (a refresh of the shared session). */
async function accessToken(app: TestApp): Promise<string> {
  const res = await app.gql(REFRESH_BRIEF, { token: session.refreshToken });
  const payload = res.data?.refresh;
  expect(payload?.__typename, JSON.stringify(res)).toBe('AuthPayload');
  session.refreshToken = payload.refreshToken;
  return payload.accessToken;
}

async function meWith(app: TestApp, token: string): Promise<{ id: string } | { code: string | undefined }> {
  const res = await app.gql(ME_ID, {}, { token });
  if (res.data?.me) return { id: res.data.me.id };
  expect(res.errors).toHaveLength(1);
  return { code: res.errors![0]!.extensions?.code };
}

/** Makes a fresh key sign at once (on a) and waits until b has heard of it. Returns its kid. */
async function restart(): Promise<string> {
  const kid = await a.services.signingKeys.manager!.rotate({ immediately: true });
  await vi.waitFor(async () => expect((await publishedKids(b))[0]).toBe(kid), NOTIFIED);
  return kid;
}

const keyRows = () => a.database.db.select().from(signingKeys);
async function eventCount(type: string, since: number): Promise<number> {
  const rows = await a.database.db
    .select()
    .from(authEvents)
    .where(and(eq(authEvents.type, type), gte(authEvents.createdAt, new Date(since))));
  return rows.length;
}
const kinds = (changes: KeyChange[], kind: KeyChange['kind']) => changes.filter((change) => change.kind === kind);

describe('two instances on one database', () => {
  it('publishes a key one instance created on the other as soon as it is notified, and both switch to it', async () => {
    const old = await restart();
    const start = now();
    advanceTo(start + 10_000);
    const [created] = await a.services.signingKeys.manager!.step();
    expect(created?.kind).toBe('created');
    // b runs no step and no periodic reload here: only the notification tells it.
    await vi.waitFor(async () => expect(await publishedKids(b)).toContain(created!.kid), NOTIFIED);
    expect(kidOf(await accessToken(b))).toBe(old);

    // Each instance switches on its own clock at activatesAt, before any step records it.
    advanceTo(start + 20_000);
    expect(kidOf(await accessToken(a))).toBe(created!.kid);
    const fromB = await accessToken(b);
    expect(kidOf(fromB)).toBe(created!.kid);
    expect(await meWith(a, fromB)).toEqual({ id: session.userId });

    await a.services.signingKeys.manager!.step();
    await vi.waitFor(async () => expect((await publishedKids(b))[0]).toBe(created!.kid), NOTIFIED);
    expect(await publishedKids(b)).toEqual(await publishedKids(a));
  });

  it.skipIf(!onPostgres)(
    'performs a due step exactly once when both instances run it at the same moment (PostgreSQL only: PGlite runs one transaction at a time)',
    async () => {
      const old = await restart();
      const start = now();

      advanceTo(start + 10_000);
      const created = (await Promise.all([a.services.signingKeys.manager!.step(), b.services.signingKeys.manager!.step()])).flat();
      expect(kinds(created, 'created')).toHaveLength(1);
      expect(created).toHaveLength(1);
      const next = created[0]!.kid;
      expect((await keyRows()).filter((row) => row.state === 'next').map((row) => row.kid)).toEqual([next]);
      expect(await eventCount('signing_key_created', start + 1)).toBe(1);

      advanceTo(start + 20_000);
      const promoted = (await Promise.all([a.services.signingKeys.manager!.step(), b.services.signingKeys.manager!.step()])).flat();
      expect(kinds(promoted, 'activated')).toEqual([{ kind: 'activated', kid: next }]);
      expect(kinds(promoted, 'retired')).toEqual([{ kind: 'retired', kid: old }]);
      const rows = await keyRows();
      expect(rows.filter((row) => row.state === 'current').map((row) => row.kid)).toEqual([next]);
      expect(rows.filter((row) => row.state === 'next')).toEqual([]);
      expect(await eventCount('signing_key_activated', start + 1)).toBe(1);
      expect(await eventCount('signing_key_retired', start + 1)).toBe(1);

      // Each reloaded after its step: both sign with the new key and publish the same set.
      expect(kidOf(await accessToken(a))).toBe(next);
      expect(kidOf(await accessToken(b))).toBe(next);
      expect(await publishedKids(b)).toEqual(await publishedKids(a));
    },
  );

  it('refuses on one instance a token of a key retired on the other, once notified', async () => {
    const compromised = await restart();
    const token = await accessToken(b);
    expect(kidOf(token)).toBe(compromised);
    expect(await meWith(b, token)).toEqual({ id: session.userId });

    expect(await a.services.signingKeys.manager!.retire(compromised)).toBe(true);
    await vi.waitFor(async () => expect(await publishedKids(b)).not.toContain(compromised), NOTIFIED);
    expect(await meWith(b, token)).toEqual({ code: 'UNAUTHENTICATED' });

    // b signs with the replacement a made.
    const [replacement] = await publishedKids(a);
    expect(replacement).not.toBe(compromised);
    const renewed = await accessToken(b);
    expect(kidOf(renewed)).toBe(replacement);
    expect(await meWith(b, renewed)).toEqual({ id: session.userId });
  });

  it(
    'ends with exactly one current key when two instances open a fresh database at once',
    async () => {
      const database = await openTestDatabase();
      try {
        const instances = await Promise.all([createTestApp(ENV, database), createTestApp(ENV, database)]);
        try {
          const rows = await database.db.select().from(signingKeys);
          expect(rows.map((row) => row.state)).toEqual(['current']);
          const kid = rows[0]!.kid;
          const events = await database.db.select().from(authEvents).where(like(authEvents.type, 'signing_key_%'));
          expect(events.map((event) => event.type).sort()).toEqual(['signing_key_activated', 'signing_key_created'].sort());
          for (const instance of instances) {
            expect(await publishedKids(instance)).toEqual([kid]);
            expect(kidOf((await registerUser(instance)).accessToken)).toBe(kid);
          }
        } finally {
          for (const instance of instances) await instance.close();
        }
      } finally {
        await database.close();
      }
    },
    OWN_DATABASE_TIMEOUT,
  );
});
