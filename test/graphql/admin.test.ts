/**
 * The admin API's own rules: nobody changes their own roles or account state, the last active
 * admin stays, unknown roles and users are typed errors, and adminStats counts right.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { OWN_DATABASE_TIMEOUT } from '../support/database.js';
import {
  activeAdminIds,
  ADMIN_STATS,
  expectFieldError,
  expectRefused,
  GRANT_ROLE,
  registerAdmin,
  registerWithPermissions,
  REVOKE_ROLE,
  SET_USER_ACTIVE,
  storedRoles,
} from '../support/authz.js';
import { GOOD_PASSWORD, LOGIN, LOGOUT, registerUser } from '../support/operations.js';
import { userRow } from '../support/rows.js';

let t: TestApp;
let admin: Awaited<ReturnType<typeof registerAdmin>>;
beforeAll(async () => {
  t = await createTestApp();
  admin = await registerAdmin(t);
});
afterAll(() => t.close());

/** An app on a database of its own, closed after the test. */
let isolated: TestApp | undefined;
afterEach(async () => {
  await isolated?.close();
  isolated = undefined;
});
async function freshApp(env: Record<string, string> = {}): Promise<TestApp> {
  isolated = await createTestApp(env);
  return isolated;
}

const LAST_ADMIN_MESSAGE = 'This is the last active admin: make another admin first.';

describe('nobody changes their own roles or account', () => {
  it('refuses an admin granting themselves a role with SELF_CHANGE', async () => {
    const self = await registerAdmin(t);
    const res = await t.gql(GRANT_ROLE, { userId: self.userId, role: 'admin' }, { token: self.accessToken });
    expectRefused(res, 'grantRole', 'SELF_CHANGE', { nullable: false });
    expect(await storedRoles(t, self.userId)).toEqual(['admin', 'user']);
  });

  it('refuses an admin revoking their own admin role with SELF_CHANGE', async () => {
    const self = await registerAdmin(t);
    const res = await t.gql(REVOKE_ROLE, { userId: self.userId, role: 'admin' }, { token: self.accessToken });
    expectRefused(res, 'revokeRole', 'SELF_CHANGE', { nullable: false });
    expect(await storedRoles(t, self.userId)).toEqual(['admin', 'user']);
  });

  it('refuses an admin disabling themselves with SELF_CHANGE', async () => {
    const self = await registerAdmin(t);
    const res = await t.gql(SET_USER_ACTIVE, { userId: self.userId, active: false }, { token: self.accessToken });
    expectRefused(res, 'setUserActive', 'SELF_CHANGE', { nullable: false });
    expect((await userRow(t, self.userId)).active).toBe(true);
  });

  it('refuses an admin changing themselves even when the id is written in upper case', async () => {
    const self = await registerAdmin(t);
    const res = await t.gql(REVOKE_ROLE, { userId: self.userId.toUpperCase(), role: 'admin' }, { token: self.accessToken });
    expectRefused(res, 'revokeRole', 'SELF_CHANGE', { nullable: false });
    expect(await storedRoles(t, self.userId)).toEqual(['admin', 'user']);
  });

  it('refuses a plain user granting themselves admin with FORBIDDEN', async () => {
    const plain = await registerUser(t);
    const res = await t.gql(GRANT_ROLE, { userId: plain.userId, role: 'admin' }, { token: plain.accessToken });
    expectRefused(res, 'grantRole', 'FORBIDDEN', { nullable: false });
    expect(await storedRoles(t, plain.userId)).toEqual(['user']);
  });

  it('refuses a holder of a custom role with roles:grant granting themselves admin with SELF_CHANGE', async () => {
    const granter = await registerWithPermissions(t, ['roles:grant']);
    const res = await t.gql(GRANT_ROLE, { userId: granter.userId, role: 'admin' }, { token: granter.accessToken });
    expectRefused(res, 'grantRole', 'SELF_CHANGE', { nullable: false });
    expect(await storedRoles(t, granter.userId)).toEqual([granter.role, 'user'].sort());
  });

  it('refuses a holder of a custom role with roles:grant granting themselves any role with SELF_CHANGE', async () => {
    const granter = await registerWithPermissions(t, ['roles:grant']);
    const other = await registerWithPermissions(t, ['users:read']);
    for (const role of ['user', other.role]) {
      const res = await t.gql(GRANT_ROLE, { userId: granter.userId, role }, { token: granter.accessToken });
      expectRefused(res, 'grantRole', 'SELF_CHANGE', { nullable: false });
    }
    expect(await storedRoles(t, granter.userId)).toEqual([granter.role, 'user'].sort());
  });

  it('refuses a holder of roles:grant granting a role they do not hold (admin) to someone else with ROLE_NOT_HELD', async () => {
    const granter = await registerWithPermissions(t, ['roles:grant']);
    const accomplice = await registerUser(t);
    const res = await t.gql(GRANT_ROLE, { userId: accomplice.userId, role: 'admin' }, { token: granter.accessToken });
    expectRefused(res, 'grantRole', 'ROLE_NOT_HELD', { nullable: false });
    expect(await storedRoles(t, accomplice.userId)).toEqual(['user']);
  });

  it('refuses a holder of roles:grant revoking a role they do not hold (admin) with ROLE_NOT_HELD', async () => {
    const granter = await registerWithPermissions(t, ['roles:grant']);
    const otherAdmin = await registerAdmin(t);
    const res = await t.gql(REVOKE_ROLE, { userId: otherAdmin.userId, role: 'admin' }, { token: granter.accessToken });
    expectRefused(res, 'revokeRole', 'ROLE_NOT_HELD', { nullable: false });
    expect(await storedRoles(t, otherAdmin.userId)).toEqual(['admin', 'user']);
  });

  it('lets a holder of roles:grant grant a role to someone else', async () => {
    const granter = await registerWithPermissions(t, ['roles:grant']);
    const other = await registerUser(t);
    const res = await t.gql(GRANT_ROLE, { userId: other.userId, role: granter.role }, { token: granter.accessToken });
    expect(res.errors).toBeUndefined();
    expect(await storedRoles(t, other.userId)).toEqual([granter.role, 'user'].sort());
  });
});

describe('unknown roles and users', () => {
  it('answers UNKNOWN_ROLE to grantRole with a role that does not exist', async () => {
    const target = await registerUser(t);
    const res = await t.gql(GRANT_ROLE, { userId: target.userId, role: 'superadmin' }, { token: admin.accessToken });
    const error = expectRefused(res, 'grantRole', 'UNKNOWN_ROLE', { nullable: false });
    expect(error.message).toContain('superadmin');
    expect(await storedRoles(t, target.userId)).toEqual(['user']);
  });

  it('answers UNKNOWN_ROLE to revokeRole with a role that does not exist', async () => {
    const target = await registerUser(t);
    const res = await t.gql(REVOKE_ROLE, { userId: target.userId, role: 'superadmin' }, { token: admin.accessToken });
    expectRefused(res, 'revokeRole', 'UNKNOWN_ROLE', { nullable: false });
  });

  it('treats role names as exact: "Admin" is UNKNOWN_ROLE', async () => {
    const target = await registerUser(t);
    const res = await t.gql(GRANT_ROLE, { userId: target.userId, role: 'Admin' }, { token: admin.accessToken });
    expectRefused(res, 'grantRole', 'UNKNOWN_ROLE', { nullable: false });
    expect(await storedRoles(t, target.userId)).toEqual(['user']);
  });

  for (const [field, query, variables] of [
    ['grantRole', GRANT_ROLE, { role: 'admin' }],
    ['revokeRole', REVOKE_ROLE, { role: 'admin' }],
    ['setUserActive', SET_USER_ACTIVE, { active: false }],
  ] as const) {
    it(`answers NOT_FOUND to ${field} with a user id that does not exist`, async () => {
      const res = await t.gql(query, { userId: randomUUID(), ...variables }, { token: admin.accessToken });
      const error = expectRefused(res, field, 'NOT_FOUND', { nullable: false });
      expect(error.message).toBe('No user has this id.');
    });

    it(`answers NOT_FOUND to ${field} with a malformed user id`, async () => {
      const res = await t.gql(query, { userId: 'nope', ...variables }, { token: admin.accessToken });
      expectRefused(res, field, 'NOT_FOUND', { nullable: false });
    });
  }

  it('answers an admin changing another user whose id is written in upper case', async () => {
    const target = await registerUser(t);
    const res = await t.gql(GRANT_ROLE, { userId: target.userId.toUpperCase(), role: 'admin' }, { token: admin.accessToken });
    expect(res.errors).toBeUndefined();
    expect(res.data?.grantRole).toEqual({ id: target.userId, roles: ['admin', 'user'] });
  });

  it('answers a User with the roles as changed, for each of several mutations in one request', async () => {
    const target = await registerUser(t);
    const res = await t.gql(
      `mutation($id: ID!) {
        a: grantRole(userId: $id, role: "admin") { roles }
        b: revokeRole(userId: $id, role: "admin") { roles }
        c: setUserActive(userId: $id, active: false) { active }
        d: setUserActive(userId: $id, active: true) { active }
      }`,
      { id: target.userId },
      { token: admin.accessToken },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ a: { roles: ['admin', 'user'] }, b: { roles: ['user'] }, c: { active: false }, d: { active: true } });
  });

  it('grants a role a user already holds without an error or a duplicate', async () => {
    const target = await registerAdmin(t);
    const res = await t.gql(GRANT_ROLE, { userId: target.userId, role: 'admin' }, { token: admin.accessToken });
    expect(res.errors).toBeUndefined();
    expect(res.data?.grantRole.roles).toEqual(['admin', 'user']);
    expect(await storedRoles(t, target.userId)).toEqual(['admin', 'user']);
  });
});

describe('the last active admin', { timeout: OWN_DATABASE_TIMEOUT }, () => {
  // Each test needs a database in which it knows every admin.
  it('refuses revoking admin from the sole admin with LAST_ADMIN, even by a holder of roles:grant', async () => {
    const fresh = await freshApp();
    const sole = await registerAdmin(fresh);
    const manager = await registerWithPermissions(fresh, ['roles:grant', 'users:write']);
    const res = await fresh.gql(REVOKE_ROLE, { userId: sole.userId, role: 'admin' }, { token: manager.accessToken });
    const error = expectRefused(res, 'revokeRole', 'LAST_ADMIN', { nullable: false });
    expect(error.message).toBe(LAST_ADMIN_MESSAGE);
    expect(await activeAdminIds(fresh)).toEqual([sole.userId]);
  });

  it('refuses disabling the sole admin with LAST_ADMIN, even by a holder of users:write', async () => {
    const fresh = await freshApp();
    const sole = await registerAdmin(fresh);
    const manager = await registerWithPermissions(fresh, ['roles:grant', 'users:write']);
    const res = await fresh.gql(SET_USER_ACTIVE, { userId: sole.userId, active: false }, { token: manager.accessToken });
    expectRefused(res, 'setUserActive', 'LAST_ADMIN', { nullable: false });
    expect((await userRow(fresh, sole.userId)).active).toBe(true);
    // Nothing of the refused change happened: the admin's token still works.
    const stats = await fresh.gql(ADMIN_STATS, {}, { token: sole.accessToken });
    expect(stats.errors).toBeUndefined();
  });

  it('refuses revoking admin from the sole admin through the operator path with LAST_ADMIN', async () => {
    const fresh = await freshApp();
    const sole = await registerAdmin(fresh);
    await expect(fresh.services.roleAdmin.revokeRole({ kind: 'operator' }, sole.userId, 'admin')).rejects.toMatchObject({
      code: 'LAST_ADMIN',
    });
    expect(await activeAdminIds(fresh)).toEqual([sole.userId]);
  });

  it('lets one of two admins demote the other, after which the survivor is the last admin', async () => {
    const fresh = await freshApp();
    const a = await registerAdmin(fresh);
    const b = await registerAdmin(fresh);
    const res = await fresh.gql(REVOKE_ROLE, { userId: b.userId, role: 'admin' }, { token: a.accessToken });
    expect(res.errors).toBeUndefined();
    expect(res.data?.revokeRole).toEqual({ id: b.userId, roles: ['user'] });
    expect(await activeAdminIds(fresh)).toEqual([a.userId]);
    const manager = await registerWithPermissions(fresh, ['roles:grant', 'users:write']);
    const again = await fresh.gql(REVOKE_ROLE, { userId: a.userId, role: 'admin' }, { token: manager.accessToken });
    expectRefused(again, 'revokeRole', 'LAST_ADMIN', { nullable: false });
  });

  it('lets one of two admins disable the other', async () => {
    const fresh = await freshApp();
    const a = await registerAdmin(fresh);
    const b = await registerAdmin(fresh);
    const res = await fresh.gql(SET_USER_ACTIVE, { userId: b.userId, active: false }, { token: a.accessToken });
    expect(res.errors).toBeUndefined();
    expect(res.data?.setUserActive).toEqual({ id: b.userId, active: false });
    expect(await activeAdminIds(fresh)).toEqual([a.userId]);
  });

  it('does not count a disabled admin as an active one', async () => {
    const fresh = await freshApp();
    const a = await registerAdmin(fresh);
    const b = await registerAdmin(fresh);
    const manager = await registerWithPermissions(fresh, ['roles:grant', 'users:write']);
    const disable = await fresh.gql(SET_USER_ACTIVE, { userId: b.userId, active: false }, { token: manager.accessToken });
    expect(disable.errors).toBeUndefined();
    expect(await storedRoles(fresh, b.userId)).toEqual(['admin', 'user']);

    const revoke = await fresh.gql(REVOKE_ROLE, { userId: a.userId, role: 'admin' }, { token: manager.accessToken });
    expectRefused(revoke, 'revokeRole', 'LAST_ADMIN', { nullable: false });
    const disableA = await fresh.gql(SET_USER_ACTIVE, { userId: a.userId, active: false }, { token: manager.accessToken });
    expectRefused(disableA, 'setUserActive', 'LAST_ADMIN', { nullable: false });
    expect(await activeAdminIds(fresh)).toEqual([a.userId]);

    // Re-enabled, B counts again and A may go.
    fresh.clock.advance(1);
    const enable = await fresh.gql(SET_USER_ACTIVE, { userId: b.userId, active: true }, { token: manager.accessToken });
    expect(enable.errors).toBeUndefined();
    const disableNow = await fresh.gql(SET_USER_ACTIVE, { userId: a.userId, active: false }, { token: manager.accessToken });
    expect(disableNow.errors).toBeUndefined();
    expect(await activeAdminIds(fresh)).toEqual([b.userId]);
  });

  it('lets a disabled admin lose the admin role while another admin is active', async () => {
    const fresh = await freshApp();
    const a = await registerAdmin(fresh);
    const b = await registerAdmin(fresh);
    expect((await fresh.gql(SET_USER_ACTIVE, { userId: b.userId, active: false }, { token: a.accessToken })).errors).toBeUndefined();
    const res = await fresh.gql(REVOKE_ROLE, { userId: b.userId, role: 'admin' }, { token: a.accessToken });
    expect(res.errors).toBeUndefined();
    expect(await storedRoles(fresh, b.userId)).toEqual(['user']);
  });

  it('lets the sole admin lose a role other than admin', async () => {
    const fresh = await freshApp();
    const sole = await registerAdmin(fresh);
    const manager = await registerWithPermissions(fresh, ['roles:grant', 'users:write']);
    const res = await fresh.gql(REVOKE_ROLE, { userId: sole.userId, role: 'user' }, { token: manager.accessToken });
    expect(res.errors).toBeUndefined();
    expect(await storedRoles(fresh, sole.userId)).toEqual(['admin']);
  });
});

describe('adminStats', () => {
  it('counts totalUsers, activeUsers and activeSessions', async () => {
    const fresh = await freshApp();
    const boss = await registerAdmin(fresh);
    const one = await registerUser(fresh);
    const two = await registerUser(fresh);
    await registerUser(fresh);
    const stats = async () => {
      const res = await fresh.gql(ADMIN_STATS, {}, { token: boss.accessToken });
      expect(res.errors).toBeUndefined();
      return res.data?.adminStats;
    };
    // Each registration opened one session.
    expect(await stats()).toEqual({ totalUsers: 4, activeUsers: 4, activeSessions: 4 });

    const login = await fresh.gql(LOGIN, { input: { email: two.email, password: GOOD_PASSWORD } });
    expect(login.data?.login.__typename).toBe('AuthPayload');
    expect(await stats()).toEqual({ totalUsers: 4, activeUsers: 4, activeSessions: 5 });

    // Disabling a user counts them out of activeUsers and ends their sessions (two of them).
    const disable = await fresh.gql(SET_USER_ACTIVE, { userId: two.userId, active: false }, { token: boss.accessToken });
    expect(disable.errors).toBeUndefined();
    expect(await stats()).toEqual({ totalUsers: 4, activeUsers: 3, activeSessions: 3 });

    // A logout ends one session.
    const logout = await fresh.gql(LOGOUT, {}, { token: one.accessToken });
    expect(logout.data).toEqual({ logout: true });
    expect(await stats()).toEqual({ totalUsers: 4, activeUsers: 3, activeSessions: 2 });
  }, OWN_DATABASE_TIMEOUT);

  it('does not count expired sessions as active', async () => {
    const fresh = await freshApp({ SESSION_MAX_AGE: '3600', ACCESS_TOKEN_TTL: '7200' });
    const boss = await registerAdmin(fresh);
    await registerUser(fresh);
    fresh.clock.advance(1800);
    const relogin = await fresh.gql(LOGIN, { input: { email: boss.email, password: GOOD_PASSWORD } });
    expect(relogin.data?.login.__typename).toBe('AuthPayload');
    fresh.clock.advance(1801);
    // The first two sessions have passed SESSION_MAX_AGE; the re-login's has not.
    const res = await fresh.gql(ADMIN_STATS, {}, { token: relogin.data?.login.accessToken });
    expect(res.errors).toBeUndefined();
    expect(res.data?.adminStats).toEqual({ totalUsers: 2, activeUsers: 2, activeSessions: 1 });
  }, OWN_DATABASE_TIMEOUT);

  it('answers FORBIDDEN to a plain user, with no counts in the answer', async () => {
    const plain = await registerUser(t);
    const res = await t.gql(ADMIN_STATS, {}, { token: plain.accessToken });
    expectFieldError(res, 'adminStats', 'FORBIDDEN');
    expect(res.data ?? null).toBeNull();
  });
});
