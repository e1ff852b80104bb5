/**
 * Issue 13: the viewerEvents subscription over Server-Sent Events, on one instance, read by
 * graphql-sse's client over a real port. Each event type comes from the mutation that causes it,
 * once, whatever else that mutation changed; a stream ends after an event that ends its session
 * and stays open otherwise; nobody else's changes reach it; it refuses whoever is not signed in;
 * a client that disconnects leaves nothing behind.
 */
import argon2 from 'argon2';
import { eq, sql } from 'drizzle-orm';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { rolePermissions, users } from '../../src/db/schema.js';
import { MAX_STREAMS_PER_SESSION } from '../../src/sessions/viewer-events.js';
import {
  CHANGE_PASSWORD,
  NEW_PASSWORD,
  requestResetToken,
  RESET_PASSWORD,
  REVOKE_OTHER_SESSIONS,
  REVOKE_SESSION,
  REVOKE_USER_SESSIONS,
  sessionIdOf,
} from '../support/account.js';
import type { TestApp } from '../support/app.js';
import { createRole, GRANT_ROLE, removePermission, REVOKE_ROLE, SET_USER_ACTIVE } from '../support/authz.js';
import { heardDuring } from '../support/channel.js';
import { onPostgres, postgresUrl } from '../support/database.js';
import type { Listening } from '../support/listen.js';
import { GOOD_PASSWORD, loginUser, LOGOUT, registerUser, type Session } from '../support/operations.js';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.js';
import {
  ARRIVES,
  expectEnded,
  nextEvent,
  openViewerEvents,
  serveViewerEvents,
  subscribeViewerEvents,
  type ViewerEventStream,
} from '../support/viewer-events.js';

let t: TestApp;
let server: Listening;
let admin: Session;
let close: (() => Promise<void>) | undefined;
let smtp: TestSmtpServer;
beforeAll(async () => {
  // Reset mails go to a real SMTP server, read back by the tests.
  smtp = await startSmtpServer();
  ({ t, server, admin, close } = await serveViewerEvents({ SMTP_URL: smtp.url }));
});
afterAll(async () => {
  await close?.();
  await smtp?.close();
});

const open = (session: Session) => openViewerEvents(t, server.url, session.accessToken);

/** Runs a mutation and checks it did not fail. */
async function mutate(query: string, variables: Record<string, unknown>, session: Session) {
  const res = await t.gql(query, variables, { token: session.accessToken });
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res;
}

/** Every stream this test opened is gone from the server. */
async function expectNoStreams() {
  await vi.waitFor(() => expect(t.services.viewerEvents.openStreams()).toBe(0), ARRIVES);
}

describe('viewerEvents', () => {
  it('delivers SESSION_REVOKED for another of the viewer’s sessions and stays open, then ends with its own', async () => {
    const user = await registerUser(t);
    const other = await loginUser(t, user.email);
    const stream = await open(user);
    await mutate(REVOKE_SESSION, { id: sessionIdOf(other.accessToken) }, user);
    expect(await nextEvent(stream)).toEqual({
      type: 'SESSION_REVOKED',
      at: t.clock.now().toISOString(),
      sessionId: sessionIdOf(other.accessToken),
    });
    await mutate(LOGOUT, {}, user);
    expect(await nextEvent(stream)).toMatchObject({ type: 'SESSION_REVOKED', sessionId: sessionIdOf(user.accessToken) });
    await expectEnded(stream);
    await expectNoStreams();
  });

  it('announces revoking the other sessions as one SESSION_REVOKED each, and keeps the current stream open', async () => {
    const user = await registerUser(t);
    const others = [await loginUser(t, user.email), await loginUser(t, user.email)];
    const stream = await open(user);
    await mutate(REVOKE_OTHER_SESSIONS, {}, user);
    const revoked = [(await nextEvent(stream)).sessionId, (await nextEvent(stream)).sessionId];
    expect(revoked.sort()).toEqual(others.map((s) => sessionIdOf(s.accessToken)).sort());
    // Still open: the next change reaches it.
    await mutate(GRANT_ROLE, { userId: user.userId, role: 'admin' }, admin);
    expect(await nextEvent(stream)).toMatchObject({ type: 'ROLES_CHANGED', sessionId: null });
    await stream.close();
    await expectNoStreams();
  });

  it('announces logout everywhere as SIGNED_OUT_EVERYWHERE alone (not each session) and ends every stream', async () => {
    const user = await registerUser(t);
    const other = await loginUser(t, user.email);
    const mine = await open(user);
    const theirs = await open(other);
    await mutate(LOGOUT, { everywhere: true }, user);
    for (const stream of [mine, theirs]) {
      expect(await nextEvent(stream)).toEqual({ type: 'SIGNED_OUT_EVERYWHERE', at: t.clock.now().toISOString(), sessionId: null });
      await expectEnded(stream);
    }
    await expectNoStreams();
  });

  it('announces an admin revoking all of a user’s sessions as SIGNED_OUT_EVERYWHERE', async () => {
    const user = await registerUser(t);
    const stream = await open(user);
    await mutate(REVOKE_USER_SESSIONS, { userId: user.userId }, admin);
    expect(await nextEvent(stream)).toMatchObject({ type: 'SIGNED_OUT_EVERYWHERE' });
    await expectEnded(stream);
  });

  it('announces a password change as PASSWORD_CHANGED alone, and ends the stream (every session is revoked)', async () => {
    const user = await registerUser(t);
    const stream = await open(user);
    const res = await mutate(CHANGE_PASSWORD, { current: GOOD_PASSWORD, next: NEW_PASSWORD }, user);
    expect(res.data?.changePassword.__typename).toBe('AuthPayload');
    expect(await nextEvent(stream)).toEqual({ type: 'PASSWORD_CHANGED', at: t.clock.now().toISOString(), sessionId: null });
    await expectEnded(stream);
  });

  it('announces a password reset through the mailed link as PASSWORD_CHANGED alone, and ends the stream', async () => {
    const user = await registerUser(t);
    const stream = await open(user);
    const token = await requestResetToken(t, smtp, user.email);
    const res = await t.gql(RESET_PASSWORD, { token, password: NEW_PASSWORD });
    expect(res.data?.resetPassword.__typename, JSON.stringify(res)).toBe('AuthPayload');
    expect(await nextEvent(stream)).toEqual({ type: 'PASSWORD_CHANGED', at: t.clock.now().toISOString(), sessionId: null });
    await expectEnded(stream);
  });

  it('announces nothing when a sign-in re-hashes the password at new parameters (the same password), and stays open', async () => {
    const user = await registerUser(t);
    const outdated = await argon2.hash(GOOD_PASSWORD, { type: argon2.argon2id, memoryCost: 4096, timeCost: 1, parallelism: 1 });
    await t.database.db.update(users).set({ passwordHash: outdated }).where(eq(users.id, user.userId));
    const stream = await open(user);
    await loginUser(t, user.email);
    const [row] = await t.database.db.select({ passwordHash: users.passwordHash }).from(users).where(eq(users.id, user.userId));
    expect(row!.passwordHash).not.toBe(outdated); // re-hashed
    // The next event is the role grant's: the re-hash announced no PASSWORD_CHANGED before it.
    await mutate(GRANT_ROLE, { userId: user.userId, role: 'admin' }, admin);
    expect(await nextEvent(stream)).toMatchObject({ type: 'ROLES_CHANGED', sessionId: null });
    await stream.close();
    await expectNoStreams();
  });

  it('announces a role granted and revoked by an admin as ROLES_CHANGED, and stays open', async () => {
    const user = await registerUser(t);
    const stream = await open(user);
    await mutate(GRANT_ROLE, { userId: user.userId, role: 'admin' }, admin);
    expect(await nextEvent(stream)).toMatchObject({ type: 'ROLES_CHANGED', sessionId: null });
    await mutate(REVOKE_ROLE, { userId: user.userId, role: 'admin' }, admin);
    expect(await nextEvent(stream)).toMatchObject({ type: 'ROLES_CHANGED', sessionId: null });
    await stream.close();
    await expectNoStreams();
  });

  it('announces a permission granted to or revoked from a role as ROLES_CHANGED to its holder, and stays open', async () => {
    const role = await createRole(t, ['users:read']);
    const user = await registerUser(t);
    await t.services.roleAdmin.grantRole({ kind: 'operator' }, user.userId, role);
    const stream = await open(user);
    await t.database.db.insert(rolePermissions).values({ role, permission: 'audit:read' });
    expect(await nextEvent(stream)).toMatchObject({ type: 'ROLES_CHANGED', sessionId: null });
    await removePermission(t, role, 'users:read');
    expect(await nextEvent(stream)).toMatchObject({ type: 'ROLES_CHANGED', sessionId: null });
    await stream.close();
    await expectNoStreams();
  });

  it('announces disabling by an admin as ACCOUNT_DISABLED alone (not the sign-out it implies), and ends the stream', async () => {
    const user = await registerUser(t);
    const stream = await open(user);
    await mutate(SET_USER_ACTIVE, { userId: user.userId, active: false }, admin);
    expect(await nextEvent(stream)).toEqual({ type: 'ACCOUNT_DISABLED', at: t.clock.now().toISOString(), sessionId: null });
    await expectEnded(stream);
  });

  it('announces what an operator does in SQL, as a trigger sees it', async () => {
    const user = await registerUser(t);
    const stream = await open(user);
    await t.database.db.update(users).set({ active: false }).where(eq(users.id, user.userId));
    expect(await nextEvent(stream)).toMatchObject({ type: 'ACCOUNT_DISABLED' });
    await expectEnded(stream);
  });

  it('announces nothing of a change that was rolled back', async () => {
    const user = await registerUser(t);
    const stream = await open(user);
    await t.database.db
      .transaction(async (tx) => {
        await tx.update(users).set({ active: false }).where(eq(users.id, user.userId));
        throw new Error('rolled back');
      })
      .catch(() => {});
    await mutate(GRANT_ROLE, { userId: user.userId, role: 'admin' }, admin);
    expect(await nextEvent(stream)).toMatchObject({ type: 'ROLES_CHANGED' });
    await stream.close();
  });

  it("never delivers another user's events", async () => {
    const viewer = await registerUser(t);
    const viewerElsewhere = await loginUser(t, viewer.email);
    const stranger = await registerUser(t);
    const strangerElsewhere = await loginUser(t, stranger.email);
    const stream = await open(viewer);
    await mutate(GRANT_ROLE, { userId: stranger.userId, role: 'admin' }, admin);
    await mutate(REVOKE_SESSION, { id: sessionIdOf(strangerElsewhere.accessToken) }, stranger);
    await mutate(LOGOUT, { everywhere: true }, stranger);
    await mutate(SET_USER_ACTIVE, { userId: stranger.userId, active: false }, admin);
    // The viewer's own change is the first thing its stream sees.
    await mutate(REVOKE_SESSION, { id: sessionIdOf(viewerElsewhere.accessToken) }, viewer);
    expect(await nextEvent(stream)).toMatchObject({ type: 'SESSION_REVOKED', sessionId: sessionIdOf(viewerElsewhere.accessToken) });
    await stream.close();
  });

  it('refuses a client that is not signed in: UNAUTHENTICATED with its reason, and opens no stream', async () => {
    const user = await registerUser(t);
    await mutate(LOGOUT, {}, user);
    for (const [token, reason] of [
      [undefined, 'MISSING'],
      ['not-a-token', 'MALFORMED'],
      [user.accessToken, 'REVOKED'],
    ] as const) {
      const stream = subscribeViewerEvents(server.url, token);
      const first = await stream.next();
      expect(first.done).toBe(false);
      expect(first.value.data ?? null).toBeNull();
      expect(first.value.errors).toMatchObject([{ extensions: { code: 'UNAUTHENTICATED', reason } }]);
      await expectEnded(stream);
    }
    expect(t.services.viewerEvents.openStreams()).toBe(0);
  });

  it('refuses a subscription whose session was revoked after its request was authorized but before its stream listened', async () => {
    const user = await registerUser(t);
    const viewerEvents = t.services.viewerEvents;
    const openStream = viewerEvents.open.bind(viewerEvents);
    // The revocation commits, and this instance hears its event (to no stream yet), in the gap
    // between the request's authorization and the stream's registration.
    const spy = vi.spyOn(viewerEvents, 'open').mockImplementation(((args: Parameters<typeof openStream>[0]) =>
      mutate(LOGOUT, {}, user)
        .then(() => t.services.changes.sync())
        .then(() => openStream(args))) as unknown as typeof openStream);
    try {
      const stream = subscribeViewerEvents(server.url, user.accessToken);
      const first = await stream.next();
      expect(first.value?.errors).toMatchObject([{ extensions: { code: 'UNAUTHENTICATED', reason: 'REVOKED' } }]);
      await expectEnded(stream);
      expect(spy).toHaveBeenCalledOnce();
    } finally {
      spy.mockRestore();
    }
    await expectNoStreams();
  });

  it('leaves no stream behind when the check made after it starts listening fails', async () => {
    const user = await registerUser(t);
    const revocations = t.services.revocations;
    const isRevoked = revocations.isRevoked.bind(revocations);
    // Fails only once a stream is registered: the re-check, not the request's authentication.
    const spy = vi.spyOn(revocations, 'isRevoked').mockImplementation(async (...args) => {
      if (t.services.viewerEvents.openStreams() > 0) throw Object.assign(new Error('connection closed'), { code: 'CONNECTION_CLOSED' });
      return isRevoked(...args);
    });
    try {
      // The database went away mid-check: SERVICE_UNAVAILABLE (503), which graphql-sse's client reports as such.
      const refused = await subscribeViewerEvents(server.url, user.accessToken).next().then(
        () => null,
        (err: unknown) => err,
      );
      expect(String(refused)).toContain('503');
    } finally {
      spy.mockRestore();
    }
    await expectNoStreams();
  });

  it('is served over GET with Accept: text/event-stream as well (the query in the URL, the token in the header)', async () => {
    const user = await registerUser(t);
    const abort = new AbortController();
    const url = `${server.url}/graphql?query=${encodeURIComponent('subscription { viewerEvents { type } }')}`;
    const response = await fetch(url, {
      headers: { accept: 'text/event-stream', authorization: `Bearer ${user.accessToken}` },
      signal: abort.signal,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    await vi.waitFor(() => expect(t.services.viewerEvents.openStreams()).toBe(1), ARRIVES);
    await mutate(GRANT_ROLE, { userId: user.userId, role: 'admin' }, admin);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    while (!/event: next\ndata: .*\n\n/.test(text)) {
      const chunk = await reader.read();
      if (chunk.done) break;
      text += chunk.value;
    }
    expect(text).toContain('data: {"data":{"viewerEvents":{"type":"ROLES_CHANGED"}}}');
    abort.abort();
    await expectNoStreams();
  });

  it('forgets a stream when its client disconnects', async () => {
    const user = await registerUser(t);
    const streams = [await open(user), await open(user)];
    expect(t.services.viewerEvents.openStreams()).toBe(2);
    await streams[0]!.close();
    await vi.waitFor(() => expect(t.services.viewerEvents.openStreams()).toBe(1), ARRIVES);
    await streams[1]!.close();
    await expectNoStreams();
  });

  it(`bounds the streams of one session to ${MAX_STREAMS_PER_SESSION}: one more is TOO_MANY_STREAMS`, async () => {
    const user = await registerUser(t);
    const streams: ViewerEventStream[] = [];
    for (let i = 0; i < MAX_STREAMS_PER_SESSION; i += 1) streams.push(await open(user));
    const refused = subscribeViewerEvents(server.url, user.accessToken);
    const first = await refused.next();
    expect(first.value.errors).toMatchObject([{ extensions: { code: 'TOO_MANY_STREAMS' } }]);
    await expectEnded(refused);
    // Another session of the same user has streams of its own.
    const elsewhere = await loginUser(t, user.email);
    streams.push(await open(elsewhere));
    for (const stream of streams) await stream.close();
    await expectNoStreams();
  });

  it.skipIf(!onPostgres)('ends every stream, with no event, when the change listener is lost', async () => {
    const user = await registerUser(t);
    const stream = await open(user);
    const pid = t.services.changes.listenerPid();
    expect(pid).not.toBeNull();
    await t.database.db.execute(sql`select pg_terminate_backend(${pid})`);
    await expectEnded(stream);
    await expectNoStreams();
    await vi.waitFor(() => expect(t.services.changes.live()).toBe(true), { timeout: 30_000, interval: 50 });
  });
});

/**
 * The payloads every instance hears: the streams above end at the first event of a cause that
 * revokes every session, so only the channel shows that nothing else was announced with it
 * (no SESSION_REVOKED per session, no SIGNED_OUT_EVERYWHERE beside ACCOUNT_DISABLED), whatever
 * order the service ran its statements in.
 */
describe('viewer event notifications', () => {
  /** The e: payloads about `userId` (or any of `userIds`) committed while `work` ran. */
  async function announced(userIds: string | string[], work: () => Promise<unknown>): Promise<string[]> {
    const heard = await heardDuring(t, work);
    return heard.filter((payload) => [userIds].flat().some((userId) => payload.startsWith(`e:${userId}:`)));
  }

  it('announces each cause once, as its strongest event', async () => {
    const cases: [string, (user: Session) => Promise<unknown>][] = [
      ['SIGNED_OUT_EVERYWHERE', (user) => mutate(LOGOUT, { everywhere: true }, user)],
      ['SIGNED_OUT_EVERYWHERE', (user) => mutate(REVOKE_USER_SESSIONS, { userId: user.userId }, admin)],
      ['PASSWORD_CHANGED', (user) => mutate(CHANGE_PASSWORD, { current: GOOD_PASSWORD, next: NEW_PASSWORD }, user)],
      [
        'PASSWORD_CHANGED',
        async (user) => t.gql(RESET_PASSWORD, { token: await requestResetToken(t, smtp, user.email), password: NEW_PASSWORD }),
      ],
      ['ACCOUNT_DISABLED', (user) => mutate(SET_USER_ACTIVE, { userId: user.userId, active: false }, admin)],
    ];
    for (const [type, cause] of cases) {
      const user = await registerUser(t);
      await loginUser(t, user.email);
      expect(await announced(user.userId, () => cause(user)), type).toEqual([`e:${user.userId}:${type}`]);
    }
  });

  it('announces a session revoked alone with its id, and a re-enabled account not at all', async () => {
    const user = await registerUser(t);
    const sid = sessionIdOf(user.accessToken);
    expect(await announced(user.userId, () => mutate(LOGOUT, {}, user))).toEqual([`e:${user.userId}:SESSION_REVOKED:${sid}`]);
    await mutate(SET_USER_ACTIVE, { userId: user.userId, active: false }, admin);
    expect(await announced(user.userId, () => mutate(SET_USER_ACTIVE, { userId: user.userId, active: true }, admin))).toEqual([]);
  });

  it('announces a role’s permission change once to each holder of the role, however many permissions changed, and to nobody else', async () => {
    const role = await createRole(t, []);
    const holders = [await registerUser(t), await registerUser(t)];
    for (const holder of holders) await t.services.roleAdmin.grantRole({ kind: 'operator' }, holder.userId, role);
    const stranger = await registerUser(t);
    const everyone = [...holders, stranger].map((user) => user.userId);
    const granted = await announced(everyone, () =>
      t.database.db.transaction(async (tx) => {
        await tx.insert(rolePermissions).values([{ role, permission: 'users:read' }, { role, permission: 'audit:read' }]);
        await tx.insert(rolePermissions).values({ role, permission: 'users:write' });
      }),
    );
    const once = holders.map((holder) => `e:${holder.userId}:ROLES_CHANGED`).sort();
    expect(granted.sort()).toEqual(once);
    const revoked = await announced(everyone, () => t.database.db.delete(rolePermissions).where(eq(rolePermissions.role, role)));
    expect(revoked.sort()).toEqual(once);
  });

  it('announces each user of one transaction by its own cause: what marks one user never silences another', async () => {
    const [a, b, c] = [await registerUser(t), await registerUser(t), await registerUser(t)];
    const cSession = sessionIdOf(c.accessToken);
    const payloads = await announced([a.userId, b.userId, c.userId], () =>
      t.database.db.transaction(async (tx) => {
        await tx.execute(sql`update users set active = false where id in (${a.userId}, ${b.userId})`);
        await tx.execute(sql`update users set tokens_valid_after = now() where id = ${b.userId}`);
        await tx.execute(sql`update sessions set revoked_at = now() where user_id in (${a.userId}, ${b.userId}, ${c.userId})`);
      }),
    );
    expect(payloads.sort()).toEqual(
      [`e:${a.userId}:ACCOUNT_DISABLED`, `e:${b.userId}:ACCOUNT_DISABLED`, `e:${c.userId}:SESSION_REVOKED:${cSession}`].sort(),
    );
  });

  // PostgreSQL never forgets a custom setting name during a connection's life, and from 15 on
  // hides such names from pg_settings: current_setting(name, true) is null only for a name the
  // connection never set. Migration 0009 set one name per user (authgraph.viewer_<id>).
  it('leaves no setting name per user on a connection, however many users’ changes it carried', async () => {
    const many = [];
    for (let i = 0; i < 12; i += 1) many.push(await registerUser(t));
    // One connection, as a pooled one lives: PGlite is one; on PostgreSQL a client of its own.
    const connection = await oneConnection();
    try {
      for (const user of many) await connection.query(`update users set tokens_valid_after = now() where id = '${user.userId}'`);
      const ids = many.map((user) => `'${user.userId}'`).join(', ');
      const [row] = await connection.query(
        `select count(*) filter (where current_setting('authgraph.viewer_' || replace(id::text, '-', ''), true) is not null) as per_user,
                count(*) filter (where current_setting('authgraph.viewer_' || id::text, true) is not null) as per_user_dashed
           from users where id in (${ids})`,
      );
      expect({ perUser: Number(row!.per_user), perUserDashed: Number(row!.per_user_dashed) }).toEqual({ perUser: 0, perUserDashed: 0 });
    } finally {
      await connection.close();
    }
  });
});

/** One database connection for raw SQL: the app's own on PGlite, a new one on PostgreSQL. */
async function oneConnection(): Promise<{ query(text: string): Promise<Record<string, unknown>[]>; close(): Promise<void> }> {
  if (!postgresUrl) {
    return { query: async (text) => ((await t.database.db.execute(sql.raw(text))) as unknown as { rows: Record<string, unknown>[] }).rows, close: async () => {} };
  }
  const [database] = (await t.database.db.execute(sql`select current_database() as name`)) as unknown as [{ name: string }];
  const url = new URL(postgresUrl);
  url.pathname = `/${database.name}`;
  const client = postgres(url.toString(), { max: 1, onnotice: () => {} });
  return { query: (text) => client.unsafe(text), close: () => client.end() };
}
