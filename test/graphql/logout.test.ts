import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revokedTokens, sessions, users } from '../../src/db/schema.js';
import { purgeExpired } from '../../src/purge.js';
import { eventsOfUser } from '../support/abuse.js';
import { createTestApp, type GraphQLResponse, type TestApp } from '../support/app.js';
import { listen, type Listening } from '../support/listen.js';
import { refreshTokenRow } from '../support/rows.js';
import { claimsOf, expectUnauthenticated, inspect, mint, tamperClaims } from '../support/forge.js';
import { loginUser, LOGOUT, registerUser, type Session, ME_ID, REFRESH_BRIEF } from '../support/operations.js';

let t: TestApp;
let server: Listening;
beforeAll(async () => {
  t = await createTestApp();
  server = await listen(t.app);
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

const REFRESH = REFRESH_BRIEF;

/** Logs out over the app's HTTP port, with the given access token (if any) and arguments. */
async function logout(options: { token?: string; refreshToken?: string; everywhere?: boolean }): Promise<GraphQLResponse> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const variables = { token: options.refreshToken, everywhere: options.everywhere };
  const response = await fetch(`${server.url}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query: LOGOUT, variables }) });
  return { status: response.status, ...(await response.json()) };
}

async function expectLoggedOut(res: Awaited<ReturnType<typeof logout>>) {
  expect(res).toEqual({ status: 200, data: { logout: true } });
}

/** The access token works: me answers its user. */
async function expectAccessWorks(session: Session) {
  const res = await t.gql(ME_ID, {}, { token: session.accessToken });
  expect(res.errors).toBeUndefined();
  expect(res.data?.me).toEqual({ id: session.userId });
}

async function expectAccessRefused(session: Session) {
  expectUnauthenticated(await t.gql(ME_ID, {}, { token: session.accessToken }), 'me');
}

/** Refreshing the session's refresh token is refused as InvalidRefreshTokenError. */
async function expectRefreshRefused(refreshToken: string) {
  const res = await t.gql(REFRESH, { token: refreshToken });
  expect(res.status).toBe(200);
  expect(res.errors).toBeUndefined();
  expect(res.data?.refresh).toEqual({ __typename: 'InvalidRefreshTokenError', code: 'INVALID_REFRESH_TOKEN' });
}

/** Refreshing works, and the new access token works; returns the new tokens. */
async function expectRefreshWorks(session: Session): Promise<Session> {
  const res = await t.gql(REFRESH, { token: session.refreshToken });
  expect(res.errors).toBeUndefined();
  expect(res.data?.refresh).toMatchObject({ __typename: 'AuthPayload', user: { id: session.userId } });
  const next = { ...session, accessToken: res.data!.refresh.accessToken, refreshToken: res.data!.refresh.refreshToken };
  await expectAccessWorks(next);
  return next;
}

describe('logout', () => {
  it('revokes the presented access token', async () => {
    const session = await registerUser(t);
    await expectAccessWorks(session);
    await expectLoggedOut(await logout({ token: session.accessToken }));
    await expectAccessRefused(session);
  });

  it("revokes the access token's session, so its refresh token is refused", async () => {
    const session = await registerUser(t);
    await expectLoggedOut(await logout({ token: session.accessToken }));
    await expectRefreshRefused(session.refreshToken);
    const [row] = await t.database.db.select().from(sessions).where(eq(sessions.id, String(claimsOf(session.accessToken).sid)));
    expect(row?.revokedAt?.getTime()).toBe(t.clock.now().getTime());
  });

  it('revokes every access token issued in that session, not only the presented one', async () => {
    const session = await registerUser(t);
    const refreshed = await expectRefreshWorks(session);
    await expectLoggedOut(await logout({ token: refreshed.accessToken }));
    await expectAccessRefused(refreshed);
    // The older token of the same session (never presented to logout) dies with the session.
    await expectAccessRefused(session);
  });

  it('leaves the other sessions of the same user working', async () => {
    const first = await registerUser(t);
    const second = await loginUser(t, first.email);
    const third = await loginUser(t, first.email);
    await expectLoggedOut(await logout({ token: first.accessToken }));
    await expectAccessRefused(first);
    await expectAccessWorks(second);
    await expectAccessWorks(third);
    await expectRefreshWorks(second);
    await expectRefreshWorks(third);
  });

  it('stores the revoked jti in revoked_tokens until the token would have expired', async () => {
    const session = await registerUser(t);
    const { jti, exp } = inspect(session.accessToken).claims;
    await expectLoggedOut(await logout({ token: session.accessToken }));
    const rows = await t.database.db.select().from(revokedTokens).where(eq(revokedTokens.jti, jti!));
    expect(rows).toHaveLength(1);
    expect(rows[0]!.expiresAt.getTime()).toBe(exp! * 1000);
  });

  it('refuses a token whose jti is on the revocation list even while its session is live', async () => {
    const session = await registerUser(t);
    const { jti, exp } = inspect(session.accessToken).claims;
    await t.database.db.insert(revokedTokens).values({ jti: jti!, expiresAt: new Date(exp! * 1000) });
    await t.services.changes.sync();
    await expectAccessRefused(session);
    // Only that token: the session goes on, and a refreshed token works.
    await expectRefreshWorks(session);
  });

  it('logs out with the refresh token beside an expired access token', async () => {
    const session = await registerUser(t);
    t.clock.advance(t.config.accessTokenTtl + 1);
    await expectAccessRefused(session);
    await expectLoggedOut(await logout({ token: session.accessToken, refreshToken: session.refreshToken }));
    await expectRefreshRefused(session.refreshToken);
  });

  it('logs out with the refresh token alone when no access token is sent', async () => {
    const session = await registerUser(t);
    const other = await loginUser(t, session.email);
    await expectLoggedOut(await logout({ refreshToken: session.refreshToken }));
    await expectRefreshRefused(session.refreshToken);
    // The access token of that session dies with it; the user's other session does not.
    await expectAccessRefused(session);
    await expectAccessWorks(other);
  });

  it('revokes both sessions when given an access token and the refresh token of another session', async () => {
    const first = await registerUser(t);
    const second = await loginUser(t, first.email);
    const third = await loginUser(t, first.email);
    await expectLoggedOut(await logout({ token: first.accessToken, refreshToken: second.refreshToken }));
    await expectAccessRefused(first);
    await expectAccessRefused(second);
    await expectRefreshRefused(first.refreshToken);
    await expectRefreshRefused(second.refreshToken);
    await expectAccessWorks(third);
  });

  it('leaves other users alone', async () => {
    const mine = await registerUser(t);
    const theirs = await registerUser(t);
    await expectLoggedOut(await logout({ token: mine.accessToken, everywhere: true }));
    await expectAccessWorks(theirs);
    await expectRefreshWorks(theirs);
  });

  it('answers UNAUTHENTICATED (MISSING) without any token', async () => {
    const res = await logout({});
    expectUnauthenticated(res, 'logout', { nullable: false });
    expect(res.errors![0]!.extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'MISSING' });
  });

  it('answers UNAUTHENTICATED (MALFORMED) with a garbage access token and a garbage refresh token', async () => {
    const res = await logout({ token: 'garbage', refreshToken: 'garbage.garbage' });
    expectUnauthenticated(res, 'logout', { nullable: false });
    expect(res.errors![0]!.extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'MALFORMED' });
  });

  it('answers UNAUTHENTICATED (MALFORMED) with a forged access token, unexpired or expired, and revokes nothing', async () => {
    const session = await registerUser(t);
    const forged = await mint({ claims: claimsOf(session.accessToken), secret: new TextEncoder().encode('y'.repeat(40)) });
    for (const when of ['unexpired', 'expired']) {
      // Expired, a token of ours would still end its session; a forged one proves nothing.
      if (when === 'expired') t.clock.advance(t.config.accessTokenTtl + 1);
      const res = await logout({ token: forged });
      expectUnauthenticated(res, 'logout', { nullable: false });
      expect(res.errors![0]!.extensions, when).toEqual({ code: 'UNAUTHENTICATED', reason: 'MALFORMED' });
    }
    await expectRefreshWorks(session);
  });

  it('revokes the session of a valid refresh token even beside a garbage access token', async () => {
    const session = await registerUser(t);
    await expectLoggedOut(await logout({ token: 'garbage', refreshToken: session.refreshToken }));
    await expectRefreshRefused(session.refreshToken);
    await expectAccessRefused(session);
  });
});

describe('logout with an expired access token of ours', () => {
  /** The user's logout and logout_everywhere audit events. */
  const logoutEvents = async (session: Session) =>
    (await eventsOfUser(t, session.userId)).filter((event) => event.type.startsWith('logout'));

  it('revokes the session the token was issued in, and only that one', async () => {
    const session = await registerUser(t);
    const other = await loginUser(t, session.email);
    t.clock.advance(t.config.accessTokenTtl + 1);
    await expectAccessRefused(session);
    await expectLoggedOut(await logout({ token: session.accessToken }));
    await expectRefreshRefused(session.refreshToken);
    await expectRefreshWorks(other);
    const events = await logoutEvents(session);
    expect(events.map((event) => [event.type, event.detail])).toEqual([
      ['logout', { sessionId: claimsOf(session.accessToken).sid, accessTokenExpired: true }],
    ]);
  });

  it('revokes nothing and records nothing when its session is over already', async () => {
    const session = await registerUser(t);
    const other = await loginUser(t, session.email);
    await expectLoggedOut(await logout({ refreshToken: session.refreshToken }));
    t.clock.advance(t.config.accessTokenTtl + 1);
    await expectLoggedOut(await logout({ token: session.accessToken }));
    // Only the first logout (by refresh token) is on record; the other session goes on.
    expect(await logoutEvents(session)).toHaveLength(1);
    await expectRefreshWorks(other);
  });

  it('stays UNAUTHENTICATED (MALFORMED) when its claims were altered (another session named), and revokes nothing', async () => {
    const session = await registerUser(t);
    const victim = await loginUser(t, session.email);
    t.clock.advance(t.config.accessTokenTtl + 1);
    const altered = tamperClaims(session.accessToken, { sid: claimsOf(victim.accessToken).sid });
    const res = await logout({ token: altered });
    expect(res.errors![0]!.extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'MALFORMED' });
    await expectRefreshWorks(victim);
    await expectRefreshWorks(session);
  });
});

describe('logout is idempotent: dead tokens answer true', () => {
  it('answers true with an expired access token and an expired refresh token', async () => {
    const session = await registerUser(t);
    t.clock.advance(t.config.refreshTokenTtl + 1);
    await expectLoggedOut(await logout({ token: session.accessToken, refreshToken: session.refreshToken }));
  });

  it('answers true a second time for an access token already logged out', async () => {
    const session = await registerUser(t);
    await expectLoggedOut(await logout({ token: session.accessToken }));
    await expectLoggedOut(await logout({ token: session.accessToken }));
    await expectAccessRefused(session);
  });

  it('answers true, again, with both tokens of a session already logged out', async () => {
    const session = await registerUser(t);
    await expectLoggedOut(await logout({ token: session.accessToken, refreshToken: session.refreshToken }));
    await expectLoggedOut(await logout({ token: session.accessToken, refreshToken: session.refreshToken }));
  });

  it('answers true for the refresh token of a session that is already logged out', async () => {
    const session = await registerUser(t);
    await expectLoggedOut(await logout({ token: session.accessToken }));
    await expectRefreshRefused(session.refreshToken);
    await expectLoggedOut(await logout({ refreshToken: session.refreshToken }));
  });

  it('answers true for both tokens of a session ended by a sign-out everywhere from another session', async () => {
    const session = await registerUser(t);
    const other = await loginUser(t, session.email);
    await expectLoggedOut(await logout({ token: other.accessToken, everywhere: true }));
    await expectLoggedOut(await logout({ token: session.accessToken }));
    await expectLoggedOut(await logout({ refreshToken: session.refreshToken }));
  });

  it('answers true for a spent, rotated refresh token, and still revokes its live session', async () => {
    const session = await registerUser(t);
    const next = await expectRefreshWorks(session);
    t.clock.advance(t.config.refreshReuseGrace + 1);
    await expectLoggedOut(await logout({ refreshToken: session.refreshToken }));
    await expectRefreshRefused(next.refreshToken);
    await expectAccessRefused(next);
  });

  it('revokes a live refresh token given beside a dead access token of another session', async () => {
    const dead = await registerUser(t);
    const live = await loginUser(t, dead.email);
    await expectLoggedOut(await logout({ token: dead.accessToken }));
    await expectLoggedOut(await logout({ token: dead.accessToken, refreshToken: live.refreshToken }));
    await expectRefreshRefused(live.refreshToken);
    await expectAccessRefused(live);
  });

  it('answers true for a refresh token with a wrong secret or an unknown id, and revokes nothing', async () => {
    const session = await registerUser(t);
    const [id, secret] = session.refreshToken.split('.');
    const wrong = `${id}.${secret!.slice(0, -1)}${secret!.endsWith('A') ? 'B' : 'A'}`;
    // The two answer alike: a difference would tell a guesser which ids exist.
    await expectLoggedOut(await logout({ refreshToken: wrong }));
    await expectLoggedOut(await logout({ refreshToken: `${'A'.repeat(id!.length)}.${secret}` }));
    await expectRefreshWorks(session);
  });

  it('answers true for the refresh token of a session already purged after its end', async () => {
    const session = await registerUser(t);
    t.clock.advance(t.config.sessionMaxAge + 1);
    await purgeExpired(t.services);
    expect(await refreshTokenRow(t, session.refreshToken)).toBeUndefined();
    await expectLoggedOut(await logout({ refreshToken: session.refreshToken }));
  });
});

describe('logout everywhere', () => {
  it('revokes every session of the user and every access token they hold', async () => {
    const first = await registerUser(t);
    const sessionsHeld = [first, await loginUser(t, first.email), await loginUser(t, first.email), await loginUser(t, first.email)];
    for (const session of sessionsHeld) await expectAccessWorks(session);
    await expectLoggedOut(await logout({ token: sessionsHeld[1]!.accessToken, everywhere: true }));
    for (const session of sessionsHeld) await expectAccessRefused(session);
    for (const session of sessionsHeld) await expectRefreshRefused(session.refreshToken);
    const rows = await t.database.db.select().from(sessions).where(eq(sessions.userId, first.userId));
    expect(rows).toHaveLength(4);
    expect(rows.every((row) => row.revokedAt !== null)).toBe(true);
  });

  it('sets the user\'s "tokens valid after" instant to the time of the logout', async () => {
    const session = await registerUser(t);
    await expectLoggedOut(await logout({ token: session.accessToken, everywhere: true }));
    const [row] = await t.database.db.select().from(users).where(eq(users.id, session.userId));
    expect(row?.tokensValidAfter?.getTime()).toBe(t.clock.now().getTime());
  });

  it('lets a login in the same second right after it work', async () => {
    // Put the clock early in a second, so that 50 ms later is still the same second.
    const ms = t.clock.now().getTime() % 1000;
    if (ms > 800) t.clock.advance((1100 - ms) / 1000);
    const session = await registerUser(t);
    await expectLoggedOut(await logout({ token: session.accessToken, everywhere: true }));
    const cutoff = t.clock.now().getTime();
    t.clock.advance(0.05);
    const fresh = await loginUser(t, session.email);
    expect(inspect(fresh.accessToken).claims.iat).toBe(Math.floor(cutoff / 1000));
    await expectAccessWorks(fresh);
    await expectRefreshWorks(fresh);
    await expectAccessRefused(session);
  });

  it('lets a login in a later second work', async () => {
    const session = await registerUser(t);
    await expectLoggedOut(await logout({ token: session.accessToken, everywhere: true }));
    t.clock.advance(1);
    const fresh = await loginUser(t, session.email);
    await expectAccessWorks(fresh);
    await expectRefreshWorks(fresh);
  });

  it('refuses a token issued before the cut-off even in a session opened after it', async () => {
    const session = await registerUser(t);
    await expectLoggedOut(await logout({ token: session.accessToken, everywhere: true }));
    t.clock.advance(1);
    const fresh = await loginUser(t, session.email);
    const claims = claimsOf(fresh.accessToken) as { iat: number };
    // Signed with the real secret, so only the "tokens valid after" check can refuse it.
    const backdated = await mint({ claims: { ...claims, iat: claims.iat - 2 } });
    expectUnauthenticated(await t.gql(ME_ID, {}, { token: backdated }), 'me');
    await expectAccessWorks(fresh);
  });

  it('answers UNAUTHENTICATED (MISSING) with only a refresh token, and revokes nothing', async () => {
    const session = await registerUser(t);
    const res = await logout({ refreshToken: session.refreshToken, everywhere: true });
    expectUnauthenticated(res, 'logout', { nullable: false });
    expect(res.errors![0]!.extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'MISSING' });
    await expectAccessWorks(session);
    await expectRefreshWorks(session);
  });

  it('with an expired access token alone answers UNAUTHENTICATED (EXPIRED), and revokes nothing, not even its session', async () => {
    const session = await registerUser(t);
    const other = await loginUser(t, session.email);
    t.clock.advance(t.config.accessTokenTtl + 1);
    const res = await logout({ token: session.accessToken, everywhere: true });
    expectUnauthenticated(res, 'logout', { nullable: false });
    // A leaked old access token ends its own session at most, never all of them.
    expect(res.errors![0]!.extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'EXPIRED' });
    await expectRefreshWorks(session);
    await expectRefreshWorks(other);
  });

  it('with an expired access token and a live refresh token of the same user revokes every session', async () => {
    const session = await registerUser(t);
    const other = await loginUser(t, session.email);
    const third = await loginUser(t, session.email);
    t.clock.advance(t.config.accessTokenTtl + 1);
    await expectLoggedOut(await logout({ token: session.accessToken, refreshToken: other.refreshToken, everywhere: true }));
    for (const each of [session, other, third]) await expectRefreshRefused(each.refreshToken);
    await expectAccessRefused(third);
  });

  it('with an expired access token and a live refresh token of another user answers UNAUTHENTICATED (EXPIRED), and revokes nothing', async () => {
    const session = await registerUser(t);
    const stranger = await registerUser(t);
    t.clock.advance(t.config.accessTokenTtl + 1);
    const res = await logout({ token: session.accessToken, refreshToken: stranger.refreshToken, everywhere: true });
    expect(res.errors![0]!.extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'EXPIRED' });
    await expectRefreshWorks(session);
    await expectRefreshWorks(stranger);
  });

  it('answers UNAUTHENTICATED (REVOKED) with an access token already logged out: other sessions may live on', async () => {
    const session = await registerUser(t);
    const other = await loginUser(t, session.email);
    await expectLoggedOut(await logout({ token: session.accessToken }));
    const res = await logout({ token: session.accessToken, everywhere: true });
    expect(res.errors![0]!.extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'REVOKED' });
    await expectAccessWorks(other);
  });
});

describe('logout under aliases and concurrency', () => {
  it('answers two aliased logouts in one request sanely', async () => {
    const session = await registerUser(t);
    const res = await t.gql(`mutation { a: logout b: logout }`, {}, { token: session.accessToken });
    expect(res).toEqual({ status: 200, data: { a: true, b: true } });
    await expectAccessRefused(session);
    await expectRefreshRefused(session.refreshToken);
  });

  it('answers an aliased logout and logout everywhere in one request sanely', async () => {
    const first = await registerUser(t);
    const second = await loginUser(t, first.email);
    const res = await t.gql(
      `mutation($r: String) { one: logout(refreshToken: $r) all: logout(everywhere: true) }`,
      { r: first.refreshToken },
      { token: first.accessToken },
    );
    expect(res).toEqual({ status: 200, data: { one: true, all: true } });
    await expectAccessRefused(second);
    await expectRefreshRefused(second.refreshToken);
  });

  it('answers two aliased logouts without a token with UNAUTHENTICATED, not an internal error', async () => {
    const res = await t.gql(`mutation { a: logout b: logout }`);
    expect(res.status).toBe(200);
    // Mutation fields run in order; the first non-null failure nulls `data` and stops the rest.
    expect(res.data).toBeNull();
    expect(res.errors).toHaveLength(1);
    expect(res.errors![0]).toMatchObject({ path: ['a'], extensions: { code: 'UNAUTHENTICATED' } });
  });

  it('answers two concurrent logouts with one token without an internal error', async () => {
    const session = await registerUser(t);
    const results = await Promise.all([logout({ token: session.accessToken }), logout({ token: session.accessToken })]);
    const outcomes = results.map((res) =>
      res.data?.logout === true ? 'logged out' : res.errors?.map((error) => error.extensions?.code).join(','),
    );
    expect(outcomes).toContain('logged out');
    for (const outcome of outcomes) expect(['logged out', 'UNAUTHENTICATED']).toContain(outcome);
    for (const res of results) expect(res.status).toBe(200);
    await expectAccessRefused(session);
    const rows = await t.database.db.select().from(revokedTokens).where(eq(revokedTokens.jti, inspect(session.accessToken).claims.jti!));
    expect(rows).toHaveLength(1);
  });
});
