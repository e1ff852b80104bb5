/**
 * A state change and its audit event commit together: when the event cannot be stored, the
 * change does not happen either (no revocation, reset or role change without its trace). The
 * database is made to refuse one event type with a trigger, as a failing disk or a full
 * table would.
 */
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CHANGE_PASSWORD, NEW_PASSWORD, meWorks, refreshWorks } from '../support/account.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { GRANT_ROLE, registerAdmin } from '../support/authz.js';
import { GOOD_PASSWORD, LOGIN, LOGOUT, REFRESH, loginUser, registerUser } from '../support/operations.js';
import { uniqueIp } from '../support/abuse.js';
import { sessionsOf, userRow } from '../support/rows.js';

let t: TestApp;
/** The same database with rate limits and the lockout on. */
let limited: TestApp;
beforeAll(async () => {
  t = await createTestApp();
  limited = await createTestApp({ RATE_LIMITS: 'on' }, t.database);
  await t.database.db.execute(sql`create table refused_audit_events (type text primary key)`);
  await t.database.db.execute(sql`
    create function refuse_audit_event() returns trigger language plpgsql as $$
    begin
      if exists (select 1 from refused_audit_events where type = new.type) then
        raise exception 'audit storage refused';
      end if;
      return new;
    end $$`);
  await t.database.db.execute(sql`
    create trigger refuse_audit_event before insert on auth_events
    for each row execute function refuse_audit_event()`);
});
afterAll(async () => {
  await limited?.close();
  await t?.close();
});
afterEach(() => refuseEvent(null));

/** Makes the database refuse to store events of this type (null: store every event again). */
async function refuseEvent(type: string | null) {
  await t.database.db.execute(sql`delete from refused_audit_events`);
  if (type) await t.database.db.execute(sql`insert into refused_audit_events values (${type})`);
}

const failsUnexpectedly = (res: { errors?: { message: string }[] }) =>
  expect(res.errors?.map((e) => e.message)).toEqual(['Unexpected error.']);

describe('state changes commit with their audit event, or not at all', () => {
  it('log out everywhere: nothing is revoked when its event cannot be stored', async () => {
    const user = await registerUser(t);
    await refuseEvent('logout_everywhere');
    failsUnexpectedly(await t.gql(LOGOUT, { everywhere: true }, { token: user.accessToken }));
    await refuseEvent(null);
    expect(await meWorks(t, user.accessToken)).toBe(true);
    expect((await userRow(t, user.userId)).tokensValidAfter).toBeNull();
    expect((await sessionsOf(t, user.userId)).every((s) => s.revokedAt === null)).toBe(true);
  });

  it('a password change does not happen without its event', async () => {
    const user = await registerUser(t);
    await refuseEvent('password_change');
    const res = await t.gql(CHANGE_PASSWORD, { current: GOOD_PASSWORD, next: NEW_PASSWORD }, { token: user.accessToken });
    failsUnexpectedly(res);
    await refuseEvent(null);
    await loginUser(t, user.email, GOOD_PASSWORD);
    expect(await meWorks(t, user.accessToken)).toBe(true);
  });

  it('a detected refresh replay is recorded with the revocation it causes, or neither happens', async () => {
    const user = await registerUser(t);
    const first = await t.gql(REFRESH, { token: user.refreshToken });
    const successor = first.data!.refresh.refreshToken as string;
    t.clock.advance(3600); // past the reuse grace: presenting the spent token again is a replay
    await refuseEvent('refresh_reuse_detected');
    failsUnexpectedly(await t.gql(REFRESH, { token: user.refreshToken }));
    await refuseEvent(null);
    // The session was not revoked, since the replay could not be recorded.
    expect(await refreshWorks(t, successor)).toBe(true);
  });

  it('a role grant does not happen without its event', async () => {
    const admin = await registerAdmin(t);
    const user = await registerUser(t);
    await refuseEvent('role_grant');
    const res = await t.gql(GRANT_ROLE, { userId: user.userId, role: 'admin' }, { token: admin.accessToken });
    failsUnexpectedly(res);
    await refuseEvent(null);
    expect((await t.gql(`query { me { roles } }`, {}, { token: user.accessToken })).data?.me.roles).toEqual(['user']);
  });

  it('a lockout does not take effect without its event', async () => {
    const { email } = await registerUser(t);
    const wrong = () => limited.gql(LOGIN, { input: { email, password: 'not-the-password-7' } }, { ip: uniqueIp() });
    for (let i = 0; i < 4; i++) expect((await wrong()).data!.login.__typename).toBe('InvalidCredentialsError');
    await refuseEvent('lockout');
    // The fifth failure would lock the email: it cannot be recorded, so it fails and counts nothing.
    failsUnexpectedly(await wrong());
    await refuseEvent(null);
    const res = await limited.gql(LOGIN, { input: { email, password: GOOD_PASSWORD } }, { ip: uniqueIp() });
    expect(res.data!.login.__typename).toBe('AuthPayload');
  });
});
