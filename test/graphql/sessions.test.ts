import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authEvents, sessions } from '../../src/db/schema.js';
import {
  MY_SESSIONS,
  REVOKE_OTHER_SESSIONS,
  REVOKE_SESSION,
  REVOKE_USER_SESSIONS,
  USER_SESSIONS,
  meWorks,
  refreshWorks,
  sessionIdOf,
} from '../support/account.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { expectFieldError, expectRefused, registerAdmin, registerWithPermissions } from '../support/authz.js';
import { expectUnauthenticated } from '../support/forge.js';
import { GOOD_PASSWORD, LOGIN, ME, registerUser, type Session, REFRESH as REFRESH_OPERATION } from '../support/operations.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(() => t.close());

const NON_EXISTENT_SESSION = '00000000-0000-4000-8000-000000000000';

/** Signs in again as the user of `session`, from a given device. */
async function signInAgain(session: Session, device: { ip: string; userAgent: string }): Promise<Session> {
  const res = await t.gql(
    LOGIN,
    { input: { email: session.email, password: GOOD_PASSWORD } },
    { ip: device.ip, headers: { 'user-agent': device.userAgent } },
  );
  const payload = res.data?.login;
  expect(payload?.__typename, JSON.stringify(res)).toBe('AuthPayload');
  return { accessToken: payload.accessToken, refreshToken: payload.refreshToken, userId: payload.user.id, email: session.email };
}

async function mySessions(accessToken: string) {
  const res = await t.gql(MY_SESSIONS, {}, { token: accessToken });
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!.me.sessions as { id: string; createdAt: string; lastUsedAt: string; userAgent: string | null; ip: string | null; current: boolean }[];
}

describe('listing sessions', () => {
  it('lists the caller\'s live sessions newest first, with current true only for the session of the caller\'s token', async () => {
    const first = await registerUser(t);
    t.clock.advance(60);
    const phone = await signInAgain(first, { ip: '198.51.100.20', userAgent: 'Phone/2.0' });
    t.clock.advance(60);
    const laptop = await signInAgain(first, { ip: '198.51.100.30', userAgent: 'Laptop/3.0' });

    const listed = await mySessions(phone.accessToken);
    expect(listed.map((s) => s.id)).toEqual([sessionIdOf(laptop.accessToken), sessionIdOf(phone.accessToken), sessionIdOf(first.accessToken)]);
    expect(listed.map((s) => s.current)).toEqual([false, true, false]);
    expect(listed[1]).toMatchObject({ ip: '198.51.100.20', userAgent: 'Phone/2.0' });
    expect(listed[0]).toMatchObject({ ip: '198.51.100.30', userAgent: 'Laptop/3.0' });

    const fromLaptop = await mySessions(laptop.accessToken);
    expect(fromLaptop.filter((s) => s.current).map((s) => s.id)).toEqual([sessionIdOf(laptop.accessToken)]);
  });

  it('leaves out revoked and expired sessions', async () => {
    const kept = await registerUser(t);
    const revoked = await signInAgain(kept, { ip: '198.51.100.1', userAgent: 'A' });
    const expired = await signInAgain(kept, { ip: '198.51.100.2', userAgent: 'B' });
    expect(await t.gql(REVOKE_SESSION, { id: sessionIdOf(revoked.accessToken) }, { token: kept.accessToken })).toMatchObject({
      data: { revokeSession: true },
    });
    await t.database.db
      .update(sessions)
      .set({ expiresAt: new Date(t.clock.now().getTime() - 1000) })
      .where(eq(sessions.id, sessionIdOf(expired.accessToken)));

    expect((await mySessions(kept.accessToken)).map((s) => s.id)).toEqual([sessionIdOf(kept.accessToken)]);
  });

  it('moves lastUsedAt on refresh, not on every request', async () => {
    const session = await registerUser(t);
    const [before] = await mySessions(session.accessToken);
    t.clock.advance(120);
    await mySessions(session.accessToken);
    const [unchanged] = await mySessions(session.accessToken);
    expect(unchanged!.lastUsedAt).toBe(before!.lastUsedAt);

    const refreshed = await t.gql(REFRESH_OPERATION, { token: session.refreshToken });
    const [after] = await mySessions(refreshed.data!.refresh.accessToken);
    expect(new Date(after!.lastUsedAt).getTime()).toBe(new Date(before!.lastUsedAt).getTime() + 120_000);
    expect(after!.createdAt).toBe(before!.createdAt);
  });

  it('answers FORBIDDEN for another user\'s sessions to someone who may read users but not revoke sessions', async () => {
    const reader = await registerWithPermissions(t, ['users:read']);
    const other = await registerUser(t);
    const res = await t.gql(USER_SESSIONS, { id: other.userId }, { token: reader.accessToken });
    expect(res.errors?.map((e) => [e.path?.join('.'), e.extensions?.code])).toEqual([['user.sessions', 'FORBIDDEN']]);
  });

  it('lets an admin list another user\'s sessions, none of them current', async () => {
    const admin = await registerAdmin(t);
    const user = await registerUser(t);
    const res = await t.gql(USER_SESSIONS, { id: user.userId }, { token: admin.accessToken });
    expect(res.errors).toBeUndefined();
    expect(res.data?.user.sessions).toEqual([expect.objectContaining({ id: sessionIdOf(user.accessToken), current: false })]);
  });
});

describe('revokeSession', () => {
  it('revokes one of the caller\'s sessions: its access token fails on the next request and its refresh token is refused', async () => {
    const keep = await registerUser(t);
    const lost = await signInAgain(keep, { ip: '198.51.100.9', userAgent: 'Lost/1.0' });
    expect(await meWorks(t, lost.accessToken)).toBe(true);

    const res = await t.gql(REVOKE_SESSION, { id: sessionIdOf(lost.accessToken) }, { token: keep.accessToken });
    expect(res).toMatchObject({ data: { revokeSession: true } });

    expectUnauthenticated(await t.gql(ME, {}, { token: lost.accessToken }), 'me');
    const refresh = await t.gql(REFRESH_OPERATION, { token: lost.refreshToken });
    expect(refresh.data?.refresh).toMatchObject({ __typename: 'InvalidRefreshTokenError', code: 'INVALID_REFRESH_TOKEN' });
    expect(await meWorks(t, keep.accessToken)).toBe(true);
    expect(await refreshWorks(t, keep.refreshToken)).toBe(true);
  });

  it('revokes the caller\'s own current session, like a logout', async () => {
    const session = await registerUser(t);
    const res = await t.gql(REVOKE_SESSION, { id: sessionIdOf(session.accessToken) }, { token: session.accessToken });
    expect(res).toMatchObject({ data: { revokeSession: true } });
    expect(await meWorks(t, session.accessToken)).toBe(false);
  });

  it('answers false for a session revoked already', async () => {
    const keep = await registerUser(t);
    const other = await signInAgain(keep, { ip: '198.51.100.3', userAgent: 'C' });
    const id = sessionIdOf(other.accessToken);
    expect((await t.gql(REVOKE_SESSION, { id }, { token: keep.accessToken })).data).toEqual({ revokeSession: true });
    expect((await t.gql(REVOKE_SESSION, { id }, { token: keep.accessToken })).data).toEqual({ revokeSession: false });
  });

  it('answers FORBIDDEN to a plain user for another user\'s session, an unknown id and a malformed id alike, and revokes nothing', async () => {
    const mallory = await registerUser(t);
    const victim = await registerUser(t);
    for (const id of [sessionIdOf(victim.accessToken), NON_EXISTENT_SESSION, 'not-a-uuid', "'; drop table sessions; --"]) {
      const res = await t.gql(REVOKE_SESSION, { id }, { token: mallory.accessToken });
      const error = expectRefused(res, 'revokeSession', 'FORBIDDEN', { nullable: false });
      expect(error.message, id).toBe('You are not allowed to do this.');
    }
    expect(await meWorks(t, victim.accessToken)).toBe(true);
    expect(await refreshWorks(t, victim.refreshToken)).toBe(true);
  });

  it('lets an admin revoke another user\'s session, and answers false for an unknown or malformed id', async () => {
    const admin = await registerAdmin(t);
    const user = await registerUser(t);
    const res = await t.gql(REVOKE_SESSION, { id: sessionIdOf(user.accessToken) }, { token: admin.accessToken });
    expect(res).toMatchObject({ data: { revokeSession: true } });
    expect(await meWorks(t, user.accessToken)).toBe(false);
    for (const id of [NON_EXISTENT_SESSION, 'not-a-uuid']) {
      expect((await t.gql(REVOKE_SESSION, { id }, { token: admin.accessToken })).data, id).toEqual({ revokeSession: false });
    }
  });

  it('records who revoked which session in the audit log', async () => {
    const admin = await registerAdmin(t);
    const user = await registerUser(t);
    const sessionId = sessionIdOf(user.accessToken);
    await t.gql(REVOKE_SESSION, { id: sessionId }, { token: admin.accessToken });
    const events = await t.database.db
      .select()
      .from(authEvents)
      .where(and(eq(authEvents.type, 'session_revoked'), eq(authEvents.userId, user.userId)));
    expect(events.map((e) => e.detail)).toEqual([{ sessionId, by: admin.userId }]);
  });

  it('answers UNAUTHENTICATED without an access token', async () => {
    expectUnauthenticated(await t.gql(REVOKE_SESSION, { id: NON_EXISTENT_SESSION }), 'revokeSession', { nullable: false });
  });
});

describe('revokeOtherSessions', () => {
  it('revokes every other session of the caller, returns how many, and keeps the current one', async () => {
    const current = await registerUser(t);
    const others = [
      await signInAgain(current, { ip: '198.51.100.4', userAgent: 'D' }),
      await signInAgain(current, { ip: '198.51.100.5', userAgent: 'E' }),
    ];
    const res = await t.gql(REVOKE_OTHER_SESSIONS, {}, { token: current.accessToken });
    expect(res).toMatchObject({ data: { revokeOtherSessions: 2 } });
    for (const other of others) {
      expect(await meWorks(t, other.accessToken)).toBe(false);
      expect(await refreshWorks(t, other.refreshToken)).toBe(false);
    }
    expect((await mySessions(current.accessToken)).map((s) => [s.id, s.current])).toEqual([[sessionIdOf(current.accessToken), true]]);
    expect(await refreshWorks(t, current.refreshToken)).toBe(true);
    expect((await t.gql(REVOKE_OTHER_SESSIONS, {}, { token: current.accessToken })).data).toEqual({ revokeOtherSessions: 0 });
  });

  it('leaves other users\' sessions alone', async () => {
    const me = await registerUser(t);
    const neighbour = await registerUser(t);
    await t.gql(REVOKE_OTHER_SESSIONS, {}, { token: me.accessToken });
    expect(await meWorks(t, neighbour.accessToken)).toBe(true);
  });

  it('answers UNAUTHENTICATED without an access token', async () => {
    expectUnauthenticated(await t.gql(REVOKE_OTHER_SESSIONS), 'revokeOtherSessions', { nullable: false });
  });
});

describe('revokeUserSessions', () => {
  it('lets an admin revoke every session of a user, returning how many; the user\'s tokens stop working', async () => {
    const admin = await registerAdmin(t);
    const user = await registerUser(t);
    const second = await signInAgain(user, { ip: '198.51.100.6', userAgent: 'F' });
    const res = await t.gql(REVOKE_USER_SESSIONS, { userId: user.userId }, { token: admin.accessToken });
    expect(res).toMatchObject({ data: { revokeUserSessions: 2 } });
    for (const session of [user, second]) {
      expect(await meWorks(t, session.accessToken)).toBe(false);
      expect(await refreshWorks(t, session.refreshToken)).toBe(false);
    }
    expect(await meWorks(t, admin.accessToken)).toBe(true);
  });

  it('answers FORBIDDEN to a plain user, even for their own id, and revokes nothing', async () => {
    const user = await registerUser(t);
    const res = await t.gql(REVOKE_USER_SESSIONS, { userId: user.userId }, { token: user.accessToken });
    expectRefused(res, 'revokeUserSessions', 'FORBIDDEN', { nullable: false });
    expect(await meWorks(t, user.accessToken)).toBe(true);
  });

  it('answers NOT_FOUND to an admin for an unknown or malformed user id', async () => {
    const admin = await registerAdmin(t);
    for (const userId of [NON_EXISTENT_SESSION, 'nobody']) {
      const res = await t.gql(REVOKE_USER_SESSIONS, { userId }, { token: admin.accessToken });
      expectFieldError(res, 'revokeUserSessions', 'NOT_FOUND');
    }
  });
});
