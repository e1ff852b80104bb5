import { decodeJwt, decodeProtectedHeader } from 'jose';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { authEvents } from '../../src/db/schema.js';
import type { KeyInfo, KeyManager } from '../../src/tokens/signing-keys.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { OWN_DATABASE_TIMEOUT } from '../support/database.js';
import { ME_ID, REFRESH_BRIEF, registerUser, type Session } from '../support/operations.js';

/** Pre-publication 2 × 5 = 10 s, a rotation every 20 s, retention 10 + 5 = 15 s. */
const ENV = { JWT_SECRET: '', JWKS_MAX_AGE: '5', KEY_ROTATION_INTERVAL: '20', ACCESS_TOKEN_TTL: '10' };
const PRE_PUBLICATION_MS = 10_000;
const RETENTION_MS = 15_000;

let t: TestApp;
let manager: KeyManager;
beforeAll(async () => {
  t = await createTestApp(ENV);
  manager = t.services.signingKeys.manager!;
});
afterAll(() => t.close());

/**
 * The app's clock goes back to where it started after each test (test/support/setup.ts), but its
 * key set does not: each test goes on from the furthest instant any test reached, so no key is
 * ever "from the future".
 */
let furthest = 0;
beforeEach(() => {
  const behind = furthest - t.clock.now().getTime();
  if (behind > 0) t.clock.advance(behind / 1000);
});
const now = (app: TestApp = t) => app.clock.now().getTime();
function advance(seconds: number, app: TestApp = t): void {
  app.clock.advance(seconds);
  if (app === t) furthest = Math.max(furthest, now());
}
const advanceTo = (instant: number, app: TestApp = t) => advance((instant - now(app)) / 1000, app);

/** Starts a test from a known point: a fresh key signing from now, no key waiting. Returns its kid. */
const restart = () => manager.rotate({ immediately: true });

const kidOf = (token: string) => decodeProtectedHeader(token).kid!;

async function keyOf(kid: string, keys: KeyManager = manager): Promise<KeyInfo | undefined> {
  return (await keys.list()).find((key) => key.kid === kid);
}

/** The kids GET /.well-known/jwks.json lists. */
async function publishedKids(app: TestApp = t): Promise<string[]> {
  const res = await app.app.fetch('http://authgraph.test/.well-known/jwks.json', {}, { req: { socket: { remoteAddress: '127.0.0.1' } } });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { keys: { kid: string }[] };
  return body.keys.map((key) => key.kid);
}

/** `refresh` with a session's refresh token; the session moves on to the successor. */
async function refresh(session: Session, app: TestApp = t): Promise<{ accessToken: string; refreshToken: string }> {
  const res = await app.gql(REFRESH_BRIEF, { token: session.refreshToken });
  const payload = res.data?.refresh;
  expect(payload?.__typename, JSON.stringify(res)).toBe('AuthPayload');
  session.refreshToken = payload.refreshToken;
  return payload;
}

/** A fresh access token of the session, signed by whatever key signs now. */
const accessToken = async (session: Session, app: TestApp = t) => (await refresh(session, app)).accessToken;

/** `me` with an access token: the user id, or the error code it was refused with. */
async function meWith(token: string, app: TestApp = t): Promise<{ id: string } | { code: string | undefined }> {
  const res = await app.gql(ME_ID, {}, { token });
  if (res.data?.me) return { id: res.data.me.id };
  expect(res.errors).toHaveLength(1);
  return { code: res.errors![0]!.extensions?.code };
}

const TYPE_ORDER = ['created', 'activated', 'retired', 'removed', 'revoked'];
/** The audit events of one key from `origin` on, as `<type>@<ms after origin>`, oldest first. */
async function keyEvents(kid: string, origin: number, app: TestApp = t): Promise<{ events: string[]; details: unknown[] }> {
  const rows = await app.database.db
    .select()
    .from(authEvents)
    .where(sql`${authEvents.type} like 'signing_key_%' and ${authEvents.detail}->>'kid' = ${kid}`);
  const events = rows
    .map((row) => ({ type: row.type.replace('signing_key_', ''), at: row.createdAt.getTime() - origin, detail: row.detail }))
    .filter((event) => event.at >= 0)
    .sort((a, b) => a.at - b.at || TYPE_ORDER.indexOf(a.type) - TYPE_ORDER.indexOf(b.type));
  return { events: events.map((e) => `${e.type}@${e.at}`), details: events.map((e) => e.detail) };
}

describe('scheduled rotation', () => {
  it('publishes a new key at least 2 × JWKS_MAX_AGE before any token carries its kid', async () => {
    const first = await restart();
    const session = await registerUser(t);
    const publishedAt = new Map<string, number>();
    const signsFrom = new Map<string, number>();
    // The server's schedule, one step a second, over two rotations (about 150 requests: a slow
    // machine needs more than the default time limit).
    for (let second = 0; second <= 45; second++) {
      await manager.step();
      for (const kid of await publishedKids()) if (!publishedAt.has(kid)) publishedAt.set(kid, now());
      const kid = kidOf(await accessToken(session));
      if (!signsFrom.has(kid)) signsFrom.set(kid, now());
      advance(1);
    }
    const rotatedTo = [...signsFrom.keys()].filter((kid) => kid !== first);
    expect(rotatedTo).toHaveLength(2);
    for (const kid of rotatedTo) {
      expect(signsFrom.get(kid)! - publishedAt.get(kid)!).toBeGreaterThanOrEqual(PRE_PUBLICATION_MS);
    }
  }, 90_000);

  it('signs with the next key from its activatesAt on, before any step records the promotion', async () => {
    const old = await restart();
    const start = now();
    const session = await registerUser(t);
    advance(10);
    await manager.step();
    const next = (await manager.list()).find((key) => key.state === 'next')!;
    expect(next.activatesAt.getTime()).toBe(start + 20_000);

    advanceTo(next.activatesAt.getTime() - 1);
    expect(kidOf(await accessToken(session))).toBe(old);
    advance(0.001);
    const token = await accessToken(session);
    expect(kidOf(token)).toBe(next.kid);
    expect(await meWith(token)).toEqual({ id: session.userId });
    // Nothing recorded the switch yet.
    expect((await keyOf(next.kid))?.state).toBe('next');
    expect((await keyOf(old))?.state).toBe('current');

    await manager.step();
    expect((await keyOf(next.kid))?.state).toBe('current');
    expect((await keyOf(old))?.state).toBe('retired');
  });

  it('keeps a retired key published and its tokens good until they expire, and removes it ACCESS_TOKEN_TTL + JWKS_MAX_AGE after it retired', async () => {
    const old = await restart();
    const start = now();
    const session = await registerUser(t);
    advance(10);
    await manager.step();
    // The last token the old key signs, an instant before the next key takes over.
    advanceTo(start + 20_000 - 1);
    const last = await accessToken(session);
    expect(kidOf(last)).toBe(old);
    advance(0.001);
    await manager.step();
    expect(await keyOf(old)).toMatchObject({ state: 'retired', retiredAt: new Date(now()), removeAt: new Date(now() + RETENTION_MS) });
    const retiredAt = now();

    // Up to the last instant of its last token, the old key is published and its token is good.
    const exp = decodeJwt(last).exp! * 1000;
    expect(exp).toBeGreaterThan(retiredAt);
    for (const instant of [retiredAt + 1, exp - 1]) {
      advanceTo(instant);
      await manager.step();
      expect(await publishedKids()).toContain(old);
      expect(await meWith(last)).toEqual({ id: session.userId });
    }
    advanceTo(retiredAt + RETENTION_MS - 1);
    await manager.step();
    expect(await publishedKids()).toContain(old);

    advanceTo(retiredAt + RETENTION_MS);
    await manager.step();
    expect(await publishedKids()).not.toContain(old);
    expect(await keyOf(old)).toBeUndefined();
  });

  it('records every transition of a key in the audit log, with its kid and algorithm', async () => {
    await restart();
    const start = now();
    advance(10);
    await manager.step();
    const kid = (await manager.list()).find((key) => key.state === 'next')!.kid;
    advance(10);
    await manager.step();
    advance(10);
    await manager.step();
    advance(10);
    await manager.step();
    advance(RETENTION_MS / 1000);
    await manager.step();
    expect(await keyOf(kid)).toBeUndefined();

    const { events, details } = await keyEvents(kid, start);
    expect(events).toEqual(['created@10000', 'activated@20000', 'retired@40000', 'removed@55000']);
    for (const detail of details) expect(detail).toEqual({ kid, algorithm: 'ES256' });
  });

  it(
    'never rotates by time with KEY_ROTATION_INTERVAL=0, while keys rotate still does',
    async () => {
      const off = await createTestApp({ ...ENV, KEY_ROTATION_INTERVAL: '0' });
      try {
        const offManager = off.services.signingKeys.manager!;
        const [only] = await offManager.list();
        for (const seconds of [10, 10, 3600, 86_400 * 400]) {
          off.clock.advance(seconds);
          expect(await offManager.step()).toEqual([]);
          expect(kidOf((await registerUser(off)).accessToken)).toBe(only!.kid);
        }
        expect(await offManager.list()).toEqual([only]);

        const next = await offManager.rotate();
        expect((await keyOf(next, offManager))?.state).toBe('next');
      } finally {
        await off.close();
      }
    },
    OWN_DATABASE_TIMEOUT,
  );
});

describe('keys rotate', () => {
  it('schedules a next key that is published at once and signs only after 2 × JWKS_MAX_AGE', async () => {
    const old = await restart();
    const session = await registerUser(t);
    advance(1);
    const start = now();
    const next = await manager.rotate();
    expect(await keyOf(next)).toMatchObject({ state: 'next', algorithm: 'ES256', activatesAt: new Date(start + PRE_PUBLICATION_MS) });
    expect(await publishedKids()).toEqual(expect.arrayContaining([old, next]));
    expect(kidOf(await accessToken(session))).toBe(old);
    advance(PRE_PUBLICATION_MS / 1000 - 0.001);
    expect(kidOf(await accessToken(session))).toBe(old);
    advance(0.001);
    expect(kidOf(await accessToken(session))).toBe(next);

    expect((await keyEvents(next, start)).events).toEqual(['created@0']);
    await manager.step();
    expect((await keyEvents(next, start)).events).toEqual(['created@0', 'activated@10000']);
    expect((await keyEvents(old, start)).events).toEqual(['retired@10000']);
  });

  it('with immediately, makes a new key sign at once; the old one stays published and its tokens good', async () => {
    const old = await restart();
    const session = await registerUser(t);
    advance(1);
    const start = now();
    const before = await accessToken(session);
    const fresh = await manager.rotate({ immediately: true });
    expect(fresh).not.toBe(old);
    const after = await accessToken(session);
    expect(kidOf(after)).toBe(fresh);
    expect(await keyOf(fresh)).toMatchObject({ state: 'current', activatesAt: new Date(start) });
    expect(await keyOf(old)).toMatchObject({ state: 'retired', retiredAt: new Date(start), removeAt: new Date(start + RETENTION_MS) });
    expect(await publishedKids()).toEqual(expect.arrayContaining([old, fresh]));
    expect(await meWith(before)).toEqual({ id: session.userId });
    expect(await meWith(after)).toEqual({ id: session.userId });

    const events = await keyEvents(fresh, start);
    expect(events.events).toEqual(['created@0', 'activated@0']);
    expect(events.details).toEqual([
      { kid: fresh, algorithm: 'ES256' },
      { kid: fresh, algorithm: 'ES256' },
    ]);
    expect(await keyEvents(old, start)).toEqual({ events: ['retired@0'], details: [{ kid: old, algorithm: 'ES256' }] });
  });

  it('replaces a key that waits with the new one, retiring it (it may already sign on an instance whose clock runs ahead), never deleting it', async () => {
    await restart();
    const start = now();
    const waiting = await manager.rotate();
    const replacement = await manager.rotate();
    expect((await keyOf(waiting))?.state).toBe('retired');
    expect(await publishedKids()).toContain(waiting);
    expect((await manager.list()).filter((key) => key.state === 'next').map((key) => key.kid)).toEqual([replacement]);
    expect((await keyEvents(waiting, start)).events).toEqual(['created@0', 'retired@0']);
  });

  it('promotes a waiting key whose time has come before rotating: tokens it already signed stay valid', async () => {
    await restart();
    const waiting = await manager.rotate();
    advance(11); // past 2 x JWKS_MAX_AGE: every instance signs with it, before any step recorded it
    const session = await registerUser(t);
    expect(kidOf(session.accessToken)).toBe(waiting);
    await manager.rotate();
    expect((await keyOf(waiting))?.state).toBe('current');
    expect(await meWith(session.accessToken)).toEqual({ id: session.userId });
  });
});

describe('refresh across a rotation', () => {
  it('answers a retry within the grace window with the same successor after rotate --now', async () => {
    const old = await restart();
    const session = await registerUser(t);
    const spent = session.refreshToken;
    const first = await refresh(session);
    expect(kidOf(first.accessToken)).toBe(old);

    const fresh = await manager.rotate({ immediately: true });
    advance(5);
    const retry = await refresh({ ...session, refreshToken: spent });
    expect(retry.refreshToken).toBe(first.refreshToken);
    expect(kidOf(retry.accessToken)).toBe(fresh);
    expect(await meWith(retry.accessToken)).toEqual({ id: session.userId });
  });

  it('answers a retry within the grace window with the same successor after a scheduled promotion', async () => {
    const old = await restart();
    const session = await registerUser(t);
    const next = await manager.rotate();
    advance(PRE_PUBLICATION_MS / 1000 - 1);
    const spent = session.refreshToken;
    const first = await refresh(session);
    expect(kidOf(first.accessToken)).toBe(old);

    advance(1);
    await manager.step();
    expect((await keyOf(next))?.state).toBe('current');
    advance(1);
    const retry = await refresh({ ...session, refreshToken: spent });
    expect(retry.refreshToken).toBe(first.refreshToken);
    expect(kidOf(retry.accessToken)).toBe(next);
  });
});

describe('changing JWT_ALGORITHM', () => {
  it(
    'schedules a key of the new algorithm and signs with the old one until it activates',
    async () => {
      const es = await createTestApp(ENV);
      try {
        const esKid = (await es.services.signingKeys.manager!.list())[0]!.kid;
        const rs = await createTestApp({ ...ENV, JWT_ALGORITHM: 'RS256' }, es.database);
        try {
          const start = now(rs);
          const rsManager = rs.services.signingKeys.manager!;
          const next = (await rsManager.list()).find((key) => key.state === 'next')!;
          expect(next).toMatchObject({ algorithm: 'RS256', activatesAt: new Date(start + PRE_PUBLICATION_MS) });
          expect(await publishedKids(rs)).toEqual(expect.arrayContaining([esKid, next.kid]));

          const session = await registerUser(rs);
          expect(decodeProtectedHeader(session.accessToken)).toMatchObject({ alg: 'ES256', kid: esKid });
          advance(PRE_PUBLICATION_MS / 1000 - 0.001, rs);
          expect(await rsManager.step()).toEqual([]);
          const lastEs = await accessToken(session, rs);
          expect(decodeProtectedHeader(lastEs)).toMatchObject({ alg: 'ES256', kid: esKid });

          advance(0.001, rs);
          const rsToken = await accessToken(session, rs);
          expect(decodeProtectedHeader(rsToken)).toMatchObject({ alg: 'RS256', kid: next.kid });
          await rsManager.step();
          expect(await keyOf(next.kid, rsManager)).toMatchObject({ state: 'current', algorithm: 'RS256' });
          expect(await keyOf(esKid, rsManager)).toMatchObject({ state: 'retired', algorithm: 'ES256' });
          // Both algorithms' tokens are accepted while the old key is kept.
          expect(await meWith(lastEs, rs)).toEqual({ id: session.userId });
          expect(await meWith(rsToken, rs)).toEqual({ id: session.userId });

          expect(await keyEvents(next.kid, start, rs)).toEqual({
            events: ['created@0', 'activated@10000'],
            details: [
              { kid: next.kid, algorithm: 'RS256' },
              { kid: next.kid, algorithm: 'RS256' },
            ],
          });
          expect((await keyEvents(esKid, start, rs)).details).toContainEqual({ kid: esKid, algorithm: 'ES256' });
        } finally {
          await rs.close();
        }
      } finally {
        await es.close();
      }
    },
    OWN_DATABASE_TIMEOUT,
  );
});

describe('keys retire', () => {
  it("refuses the key's tokens on the next request, while the session's refresh token still works", async () => {
    const retired = await restart();
    const session = await registerUser(t);
    advance(1);
    const start = now();
    expect(kidOf(session.accessToken)).toBe(retired);
    expect(await meWith(session.accessToken)).toEqual({ id: session.userId });

    expect(await manager.retire(retired)).toBe(true);
    expect(await meWith(session.accessToken)).toEqual({ code: 'UNAUTHENTICATED' });
    expect(await publishedKids()).not.toContain(retired);
    expect(await keyOf(retired)).toMatchObject({ state: 'revoked' });

    // Nobody signs in again: the refresh token gives a token of the replacement key.
    const renewed = await refresh(session);
    expect(kidOf(renewed.accessToken)).not.toBe(retired);
    expect(await meWith(renewed.accessToken)).toEqual({ id: session.userId });

    expect(await keyEvents(retired, start)).toEqual({
      events: ['revoked@0'],
      details: [{ kid: retired, algorithm: 'ES256' }],
    });
  });

  it('promotes a fresh key at once when the current key is retired', async () => {
    const retired = await restart();
    const start = now();
    const session = await registerUser(t);
    expect(await manager.retire(retired)).toBe(true);
    const current = (await manager.list()).find((key) => key.state === 'current')!;
    expect(current.kid).not.toBe(retired);
    expect(current.activatesAt).toEqual(new Date(start));
    expect(kidOf(await accessToken(session))).toBe(current.kid);
    expect((await keyEvents(current.kid, start)).events).toEqual(['created@0', 'activated@0']);
  });

  it('promotes the waiting key at once when the current key is retired', async () => {
    const retired = await restart();
    const start = now();
    const session = await registerUser(t);
    const waiting = await manager.rotate();
    expect(await manager.retire(retired)).toBe(true);
    expect(await keyOf(waiting)).toMatchObject({ state: 'current', activatesAt: new Date(start) });
    expect(kidOf(await accessToken(session))).toBe(waiting);
    expect((await keyEvents(waiting, start)).events).toEqual(['created@0', 'activated@0']);
  });

  it('refuses the tokens of a key that no longer signs and leaves the signing key alone', async () => {
    const old = await restart();
    const session = await registerUser(t);
    const oldToken = session.accessToken;
    const signing = await manager.rotate({ immediately: true });
    expect(await meWith(oldToken)).toEqual({ id: session.userId });

    expect(await manager.retire(old)).toBe(true);
    expect(await meWith(oldToken)).toEqual({ code: 'UNAUTHENTICATED' });
    expect((await keyOf(signing))?.state).toBe('current');
    expect(kidOf(await accessToken(session))).toBe(signing);
  });

  it('answers false for a kid it does not know, or already revoked, and changes nothing', async () => {
    const revoked = await restart();
    await manager.rotate({ immediately: true });
    expect(await manager.retire(revoked)).toBe(true);
    const keys = await manager.list();
    const events = await t.database.db.select().from(authEvents);

    expect(await manager.retire('no-such-kid')).toBe(false);
    expect(await manager.retire(revoked)).toBe(false);
    expect(await manager.list()).toEqual(keys);
    expect(await t.database.db.select().from(authEvents)).toHaveLength(events.length);
  });
});
