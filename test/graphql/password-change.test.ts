import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authEvents } from '../../src/db/schema.js';
import {
  CHANGE_PASSWORD,
  MY_SESSIONS,
  NEW_PASSWORD,
  loginAnswer,
  meWorks,
  refreshWorks,
  sessionIdOf,
} from '../support/account.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { expectUnauthenticated } from '../support/forge.js';
import { GOOD_PASSWORD, ME, loginUser, registerUser, REFRESH as REFRESH_OPERATION } from '../support/operations.js';
import { sessionsOf, userRow } from '../support/rows.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(() => t.close());

async function changePassword(accessToken: string, current: string, next: string) {
  const res = await t.gql(CHANGE_PASSWORD, { current, next }, { token: accessToken });
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!.changePassword;
}


describe('changePassword', () => {
  it('replaces the password: the new one signs in, the old one no longer does', async () => {
    const session = await registerUser(t);
    const payload = await changePassword(session.accessToken, GOOD_PASSWORD, NEW_PASSWORD);
    expect(payload).toMatchObject({ __typename: 'AuthPayload', user: { id: session.userId } });
    expect(await loginAnswer(t, session.email, NEW_PASSWORD)).toBe('AuthPayload');
    expect(await loginAnswer(t, session.email, GOOD_PASSWORD)).toBe('InvalidCredentialsError');
  });

  it('revokes the other sessions and every earlier access token, and keeps the caller signed in with the new tokens', async () => {
    const caller = await registerUser(t);
    const otherDevice = await loginUser(t, caller.email);
    t.clock.advance(5);

    const payload = await changePassword(caller.accessToken, GOOD_PASSWORD, NEW_PASSWORD);
    expect(payload.__typename).toBe('AuthPayload');

    // Everything issued before the change is dead, the caller's old tokens included...
    for (const old of [caller, otherDevice]) {
      expectUnauthenticated(await t.gql(ME, {}, { token: old.accessToken }), 'me');
      expect(await refreshWorks(t, old.refreshToken)).toBe(false);
    }
    // ...and the caller goes on with the tokens of a new session, the only live one.
    expect(await meWorks(t, payload.accessToken)).toBe(true);
    const newSessionId = sessionIdOf(payload.accessToken);
    expect([sessionIdOf(caller.accessToken), sessionIdOf(otherDevice.accessToken)]).not.toContain(newSessionId);
    const listed = await t.gql(MY_SESSIONS, {}, { token: payload.accessToken });
    expect(listed.data?.me.sessions.map((s: { id: string; current: boolean }) => [s.id, s.current])).toEqual([[newSessionId, true]]);
    expect((await userRow(t, caller.userId)).tokensValidAfter).not.toBeNull();
    const refreshed = await t.gql(REFRESH_OPERATION, { token: payload.refreshToken });
    expect(refreshed.data?.refresh.__typename).toBe('AuthPayload');
    expect(await meWorks(t, refreshed.data!.refresh.accessToken)).toBe(true);
  });

  it('keeps the new session working when the change happens in the same second as the sign-in', async () => {
    // Frozen clock: sign-in, change and the next request all share one instant.
    const session = await registerUser(t);
    const payload = await changePassword(session.accessToken, GOOD_PASSWORD, NEW_PASSWORD);
    expect(await meWorks(t, session.accessToken)).toBe(false);
    expect(await meWorks(t, payload.accessToken)).toBe(true);
  });

  it('answers InvalidCredentialsError for a wrong current password and changes nothing', async () => {
    const session = await registerUser(t);
    const before = await userRow(t, session.userId);
    for (const wrong of ['not-my-password-1', GOOD_PASSWORD.toUpperCase(), ` ${GOOD_PASSWORD}`, 'x'.repeat(300)]) {
      const payload = await changePassword(session.accessToken, wrong, NEW_PASSWORD);
      expect(payload, wrong).toMatchObject({ __typename: 'InvalidCredentialsError', code: 'INVALID_CREDENTIALS' });
    }
    const after = await userRow(t, session.userId);
    expect(after.passwordHash).toBe(before.passwordHash);
    expect(after.tokensValidAfter).toBeNull();
    expect(await meWorks(t, session.accessToken)).toBe(true);
    expect(await loginAnswer(t, session.email, GOOD_PASSWORD)).toBe('AuthPayload');
  });

  it('answers InputError WEAK_PASSWORD on newPassword for a password the policy refuses, and changes nothing', async () => {
    const session = await registerUser(t);
    for (const weak of ['short1!', 'password123', 'x'.repeat(257)]) {
      const payload = await changePassword(session.accessToken, GOOD_PASSWORD, weak);
      expect(payload, weak).toMatchObject({ __typename: 'InputError', code: 'WEAK_PASSWORD', field: 'newPassword' });
    }
    expect(await meWorks(t, session.accessToken)).toBe(true);
    expect(await loginAnswer(t, session.email, GOOD_PASSWORD)).toBe('AuthPayload');
  });

  it('answers InputError WEAK_PASSWORD on newPassword when the new password is the current one', async () => {
    const session = await registerUser(t);
    const payload = await changePassword(session.accessToken, GOOD_PASSWORD, GOOD_PASSWORD);
    expect(payload).toMatchObject({ __typename: 'InputError', code: 'WEAK_PASSWORD', field: 'newPassword' });
    expect(payload.message).toMatch(/differ/);
    expect(await meWorks(t, session.accessToken)).toBe(true);
    expect((await sessionsOf(t, session.userId)).filter((s) => s.revokedAt)).toEqual([]);
  });

  it('answers UNAUTHENTICATED without a valid access token', async () => {
    const res = await t.gql(CHANGE_PASSWORD, { current: GOOD_PASSWORD, next: NEW_PASSWORD });
    expectUnauthenticated(res, 'changePassword', { nullable: false });
  });

  it('records the change, and a refused attempt, in the audit log', async () => {
    const session = await registerUser(t);
    await changePassword(session.accessToken, 'wrong-password-here', NEW_PASSWORD);
    const payload = await changePassword(session.accessToken, GOOD_PASSWORD, NEW_PASSWORD);
    const events = await t.database.db
      .select()
      .from(authEvents)
      .where(and(eq(authEvents.type, 'password_change'), eq(authEvents.userId, session.userId)));
    expect(events.map((e) => e.detail)).toEqual(
      expect.arrayContaining([
        { failed: 'wrong_password' },
        { sessionId: sessionIdOf(payload.accessToken), revokedSessions: 1 },
      ]),
    );
    expect(events).toHaveLength(2);
  });
});
