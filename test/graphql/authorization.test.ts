/**
 * Who may use which field: plain user vs admin on every admin field, self vs other on the
 * private fields of User, IDOR on user(id), changes of role or state effective on the very next
 * request of an already-issued token, and the `roles` claim of a token ignored for decisions.
 */
import { randomUUID } from 'node:crypto';
import { count, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../src/db/schema.js';
import { createTestApp, type GraphQLResponse, type TestApp } from '../support/app.js';
import {
  ADMIN_STATS,
  ALL_PERMISSIONS,
  expectRefused,
  GRANT_ROLE,
  ME_FULL,
  registerAdmin,
  registerWithPermissions,
  removePermission,
  REVOKE_ROLE,
  ROLES,
  SET_USER_ACTIVE,
  storedRoles,
  USER_BY_ID,
  USERS,
} from '../support/authz.js';
import { claimsOf, mint } from '../support/forge.js';
import { GOOD_PASSWORD, LOGIN, loginUser, registerUser, uniqueEmail, type Session, REFRESH as REFRESH_OPERATION } from '../support/operations.js';
import { userRow } from '../support/rows.js';

let t: TestApp;
let admin: Session;
beforeAll(async () => {
  t = await createTestApp();
  admin = await registerAdmin(t);
});
afterAll(() => t.close());

/** One admin field: how to call it on a fresh target user, and what an admin's answer looks like. */
interface AdminField {
  field: string;
  nullable: boolean;
  /** Prepares a target and returns the operation to run. */
  prepare(): Promise<{ query: string; variables: Record<string, unknown>; target: Session }>;
  /** Checks an admin's successful answer. */
  checkAdminAnswer(res: GraphQLResponse, target: Session): Promise<void>;
  /** Checks that a refused call changed nothing. */
  checkUnchanged(target: Session): Promise<void>;
}

const nothingToCheck = async () => {};
const rolesUnchanged = (expected: string[]) => async (target: Session) => {
  expect(await storedRoles(t, target.userId)).toEqual(expected);
};

const ADMIN_FIELDS: AdminField[] = [
  {
    field: 'user',
    nullable: true,
    async prepare() {
      const target = await registerUser(t, { name: 'Target' });
      return { query: USER_BY_ID, variables: { id: target.userId }, target };
    },
    async checkAdminAnswer(res, target) {
      expect(res.errors).toBeUndefined();
      expect(res.data?.user).toMatchObject({
        id: target.userId,
        email: target.email,
        name: 'Target',
        roles: ['user'],
        permissions: [],
        active: true,
        lastLoginAt: t.clock.now().toISOString(),
      });
    },
    checkUnchanged: nothingToCheck,
  },
  {
    field: 'users',
    nullable: false,
    async prepare() {
      const target = await registerUser(t);
      return { query: USERS, variables: { first: 5, search: target.email }, target };
    },
    async checkAdminAnswer(res, target) {
      expect(res.errors).toBeUndefined();
      expect(res.data?.users.edges.map((e: any) => e.node)).toEqual([
        expect.objectContaining({ id: target.userId, email: target.email }),
      ]);
      expect(res.data?.users.pageInfo).toMatchObject({ hasNextPage: false });
    },
    checkUnchanged: nothingToCheck,
  },
  {
    field: 'adminStats',
    nullable: false,
    async prepare() {
      const target = await registerUser(t);
      return { query: ADMIN_STATS, variables: {}, target };
    },
    async checkAdminAnswer(res) {
      expect(res.errors).toBeUndefined();
      const [total] = await t.database.db.select({ n: count() }).from(users);
      const [active] = await t.database.db.select({ n: count() }).from(users).where(eq(users.active, true));
      expect(res.data?.adminStats).toMatchObject({ totalUsers: Number(total!.n), activeUsers: Number(active!.n) });
      expect(res.data?.adminStats.activeSessions).toBeGreaterThanOrEqual(2);
    },
    checkUnchanged: nothingToCheck,
  },
  {
    field: 'grantRole',
    nullable: false,
    async prepare() {
      const target = await registerUser(t);
      return { query: GRANT_ROLE, variables: { userId: target.userId, role: 'admin' }, target };
    },
    async checkAdminAnswer(res, target) {
      expect(res.errors).toBeUndefined();
      expect(res.data?.grantRole).toEqual({ id: target.userId, roles: ['admin', 'user'] });
      expect(await storedRoles(t, target.userId)).toEqual(['admin', 'user']);
    },
    checkUnchanged: rolesUnchanged(['user']),
  },
  {
    field: 'revokeRole',
    nullable: false,
    async prepare() {
      const target = await registerAdmin(t);
      return { query: REVOKE_ROLE, variables: { userId: target.userId, role: 'admin' }, target };
    },
    async checkAdminAnswer(res, target) {
      expect(res.errors).toBeUndefined();
      expect(res.data?.revokeRole).toEqual({ id: target.userId, roles: ['user'] });
      expect(await storedRoles(t, target.userId)).toEqual(['user']);
    },
    checkUnchanged: rolesUnchanged(['admin', 'user']),
  },
  {
    field: 'setUserActive',
    nullable: false,
    async prepare() {
      const target = await registerUser(t);
      return { query: SET_USER_ACTIVE, variables: { userId: target.userId, active: false }, target };
    },
    async checkAdminAnswer(res, target) {
      expect(res.errors).toBeUndefined();
      expect(res.data?.setUserActive).toEqual({ id: target.userId, active: false });
      expect((await userRow(t, target.userId)).active).toBe(false);
    },
    async checkUnchanged(target) {
      expect((await userRow(t, target.userId)).active).toBe(true);
    },
  },
];

describe('admin fields: plain user, no token, admin', () => {
  for (const spec of ADMIN_FIELDS) {
    it(`refuses ${spec.field} to a plain signed-in user with FORBIDDEN`, async () => {
      const plain = await registerUser(t);
      const { query, variables, target } = await spec.prepare();
      const res = await t.gql(query, variables, { token: plain.accessToken });
      const error = expectRefused(res, spec.field, 'FORBIDDEN', { nullable: spec.nullable });
      expect(error.message).toBe('You are not allowed to do this.');
      await spec.checkUnchanged(target);
    });

    it(`refuses ${spec.field} without a token with UNAUTHENTICATED`, async () => {
      const { query, variables, target } = await spec.prepare();
      const res = await t.gql(query, variables);
      expectRefused(res, spec.field, 'UNAUTHENTICATED', { nullable: spec.nullable });
      await spec.checkUnchanged(target);
    });

    it(`refuses ${spec.field} with a malformed token with UNAUTHENTICATED`, async () => {
      const { query, variables, target } = await spec.prepare();
      const res = await t.gql(query, variables, { token: 'not.a.jwt' });
      expectRefused(res, spec.field, 'UNAUTHENTICATED', { nullable: spec.nullable });
      await spec.checkUnchanged(target);
    });

    it(`lets an admin use ${spec.field}`, async () => {
      const { query, variables, target } = await spec.prepare();
      const res = await t.gql(query, variables, { token: admin.accessToken });
      expect(res.status).toBe(200);
      await spec.checkAdminAnswer(res, target);
    });
  }
});

describe('roles', () => {
  it('lists admin with all five permissions and user with none to any signed-in user', async () => {
    const plain = await registerUser(t);
    const res = await t.gql(ROLES, {}, { token: plain.accessToken });
    expect(res.errors).toBeUndefined();
    const byName = Object.fromEntries(res.data?.roles.map((r: any) => [r.name, r]));
    expect(byName.admin).toEqual({ name: 'admin', description: expect.any(String), permissions: ALL_PERMISSIONS });
    expect(byName.user).toEqual({ name: 'user', description: expect.any(String), permissions: [] });
  });

  it('answers the same list to an admin', async () => {
    const plain = await registerUser(t);
    const asUser = await t.gql(ROLES, {}, { token: plain.accessToken });
    const asAdmin = await t.gql(ROLES, {}, { token: admin.accessToken });
    expect(asAdmin.errors).toBeUndefined();
    expect(asAdmin.data).toEqual(asUser.data);
  });

  it('refuses roles without a token with UNAUTHENTICATED', async () => {
    const res = await t.gql(ROLES);
    expectRefused(res, 'roles', 'UNAUTHENTICATED', { nullable: false });
  });
});

describe('self vs other on User.email and User.lastLoginAt', () => {
  it('shows a plain user their own email and lastLoginAt through me', async () => {
    const plain = await registerUser(t);
    const res = await t.gql(ME_FULL, {}, { token: plain.accessToken });
    expect(res.errors).toBeUndefined();
    expect(res.data?.me).toMatchObject({
      id: plain.userId,
      email: plain.email,
      lastLoginAt: t.clock.now().toISOString(),
      roles: ['user'],
      permissions: [],
    });
  });

  it('shows a plain user their own email and lastLoginAt through user(id: own id)', async () => {
    const plain = await registerUser(t);
    const res = await t.gql(USER_BY_ID, { id: plain.userId }, { token: plain.accessToken });
    expect(res.errors).toBeUndefined();
    expect(res.data?.user).toMatchObject({ id: plain.userId, email: plain.email, lastLoginAt: t.clock.now().toISOString() });
  });

  it("shows an admin another user's email and lastLoginAt", async () => {
    const other = await registerUser(t);
    t.clock.advance(5);
    const relogin = await t.gql(LOGIN, { input: { email: other.email, password: GOOD_PASSWORD } });
    expect(relogin.data?.login.__typename).toBe('AuthPayload');
    const res = await t.gql(USER_BY_ID, { id: other.userId }, { token: admin.accessToken });
    expect(res.errors).toBeUndefined();
    expect(res.data?.user).toMatchObject({ email: other.email, lastLoginAt: t.clock.now().toISOString() });
  });

  it("refuses another user's email with FORBIDDEN to a holder of roles:grant without users:read", async () => {
    const granter = await registerWithPermissions(t, ['roles:grant']);
    const other = await registerUser(t);
    const res = await t.gql(
      `mutation($userId: ID!) { grantRole(userId: $userId, role: "user") { id email } }`,
      { userId: other.userId },
      { token: granter.accessToken },
    );
    expect(res.errors).toHaveLength(1);
    expect(res.errors![0]).toMatchObject({ path: ['grantRole', 'email'], extensions: { code: 'FORBIDDEN' } });
    // The non-null email nulls its parent, and the non-null grantRole nulls data.
    expect(res.data ?? null).toBeNull();
  });

  it("refuses another user's lastLoginAt with FORBIDDEN to a holder of roles:grant without users:read", async () => {
    const granter = await registerWithPermissions(t, ['roles:grant']);
    const other = await registerUser(t);
    const res = await t.gql(
      `mutation($userId: ID!) { grantRole(userId: $userId, role: "user") { id roles lastLoginAt } }`,
      { userId: other.userId },
      { token: granter.accessToken },
    );
    expect(res.errors).toHaveLength(1);
    expect(res.errors![0]).toMatchObject({ path: ['grantRole', 'lastLoginAt'], extensions: { code: 'FORBIDDEN' } });
    expect(res.data?.grantRole).toEqual({ id: other.userId, roles: ['user'], lastLoginAt: null });
  });

  it('lets the holder of that role read the public fields of another user it changes', async () => {
    const granter = await registerWithPermissions(t, ['roles:grant']);
    const other = await registerUser(t);
    const res = await t.gql(GRANT_ROLE, { userId: other.userId, role: granter.role }, { token: granter.accessToken });
    expect(res.errors).toBeUndefined();
    expect(res.data?.grantRole).toEqual({ id: other.userId, roles: [granter.role, 'user'].sort() });
  });

  it('returns AuthPayload.user.email and lastLoginAt in a register answer sent without a token', async () => {
    const email = uniqueEmail();
    const res = await t.gql(
      `mutation($input: RegisterInput!) { register(input: $input) { __typename ... on AuthPayload { user { id email lastLoginAt } } } }`,
      { input: { email, password: GOOD_PASSWORD } },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data?.register).toMatchObject({
      __typename: 'AuthPayload',
      user: { email, lastLoginAt: t.clock.now().toISOString() },
    });
  });

  it('returns AuthPayload.user.email and lastLoginAt in a login answer sent without a token', async () => {
    const session = await registerUser(t);
    t.clock.advance(3);
    const res = await t.gql(
      `mutation($input: LoginInput!) { login(input: $input) { __typename ... on AuthPayload { user { id email lastLoginAt } } } }`,
      { input: { email: session.email, password: GOOD_PASSWORD } },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data?.login).toEqual({
      __typename: 'AuthPayload',
      user: { id: session.userId, email: session.email, lastLoginAt: t.clock.now().toISOString() },
    });
  });

  it("returns AuthPayload.user.email in a login answer sent with another plain user's token", async () => {
    const someoneElse = await registerUser(t);
    const session = await registerUser(t);
    const res = await t.gql(LOGIN, { input: { email: session.email, password: GOOD_PASSWORD } }, { token: someoneElse.accessToken });
    expect(res.errors).toBeUndefined();
    expect(res.data?.login.user).toMatchObject({ id: session.userId, email: session.email });
  });
});

describe('IDOR on user(id)', () => {
  it('gives a plain user the same FORBIDDEN for an existing other id and for a non-existent uuid', async () => {
    const plain = await registerUser(t);
    const other = await registerUser(t);
    const existing = await t.gql(USER_BY_ID, { id: other.userId }, { token: plain.accessToken });
    const missing = await t.gql(USER_BY_ID, { id: randomUUID() }, { token: plain.accessToken });
    const a = expectRefused(existing, 'user', 'FORBIDDEN', { nullable: true });
    const b = expectRefused(missing, 'user', 'FORBIDDEN', { nullable: true });
    expect(a.message).toBe(b.message);
    expect(a.extensions).toEqual(b.extensions);
    expect(existing).toEqual(missing);
  });

  it('gives a plain user FORBIDDEN for a malformed id too', async () => {
    const plain = await registerUser(t);
    const res = await t.gql(USER_BY_ID, { id: 'nope' }, { token: plain.accessToken });
    expectRefused(res, 'user', 'FORBIDDEN', { nullable: true });
  });

  it('answers null, without an error, to an admin asking for a malformed id', async () => {
    const res = await t.gql(USER_BY_ID, { id: 'nope' }, { token: admin.accessToken });
    expect(res.status).toBe(200);
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ user: null });
  });

  it('answers null, without an error, to an admin asking for a non-existent uuid', async () => {
    const res = await t.gql(USER_BY_ID, { id: randomUUID() }, { token: admin.accessToken });
    expect(res.status).toBe(200);
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ user: null });
  });
});

describe('changes take effect on the next request of a token issued before them', () => {
  it('refuses adminStats with FORBIDDEN to a demoted admin on the very next request', async () => {
    const a = await registerAdmin(t);
    const b = await registerAdmin(t);
    const before = await t.gql(ADMIN_STATS, {}, { token: b.accessToken });
    expect(before.errors).toBeUndefined();
    const demote = await t.gql(REVOKE_ROLE, { userId: b.userId, role: 'admin' }, { token: a.accessToken });
    expect(demote.errors).toBeUndefined();
    const after = await t.gql(ADMIN_STATS, {}, { token: b.accessToken });
    expectRefused(after, 'adminStats', 'FORBIDDEN', { nullable: false });
    // The token itself is still valid: B is signed in, just no longer an admin.
    const me = await t.gql(ME_FULL, {}, { token: b.accessToken });
    expect(me.errors).toBeUndefined();
    expect(me.data?.me).toMatchObject({ id: b.userId, roles: ['user'], permissions: [] });
  });

  it('lets a newly granted admin use adminStats with the token issued before the grant', async () => {
    const plain = await registerUser(t);
    expectRefused(await t.gql(ADMIN_STATS, {}, { token: plain.accessToken }), 'adminStats', 'FORBIDDEN', { nullable: false });
    const grant = await t.gql(GRANT_ROLE, { userId: plain.userId, role: 'admin' }, { token: admin.accessToken });
    expect(grant.errors).toBeUndefined();
    const after = await t.gql(ADMIN_STATS, {}, { token: plain.accessToken });
    expect(after.errors).toBeUndefined();
    expect(after.data?.adminStats.totalUsers).toBeGreaterThan(0);
  });

  it("makes a disabled user's existing access token UNAUTHENTICATED on me", async () => {
    const victim = await registerUser(t);
    expect((await t.gql(ME_FULL, {}, { token: victim.accessToken })).errors).toBeUndefined();
    const disable = await t.gql(SET_USER_ACTIVE, { userId: victim.userId, active: false }, { token: admin.accessToken });
    expect(disable.errors).toBeUndefined();
    const res = await t.gql(ME_FULL, {}, { token: victim.accessToken });
    expectRefused(res, 'me', 'UNAUTHENTICATED', { nullable: true });
  });

  it("rejects a disabled user's refresh token with InvalidRefreshTokenError", async () => {
    const victim = await registerUser(t);
    const disable = await t.gql(SET_USER_ACTIVE, { userId: victim.userId, active: false }, { token: admin.accessToken });
    expect(disable.errors).toBeUndefined();
    const res = await t.gql(REFRESH_OPERATION, { token: victim.refreshToken });
    expect(res.errors).toBeUndefined();
    expect(res.data?.refresh).toMatchObject({ __typename: 'InvalidRefreshTokenError', code: 'INVALID_REFRESH_TOKEN' });
  });

  it('answers AccountDisabledError to a disabled user logging in with the right password', async () => {
    const victim = await registerUser(t);
    const disable = await t.gql(SET_USER_ACTIVE, { userId: victim.userId, active: false }, { token: admin.accessToken });
    expect(disable.errors).toBeUndefined();
    const res = await t.gql(LOGIN, { input: { email: victim.email, password: GOOD_PASSWORD } });
    expect(res.errors).toBeUndefined();
    expect(res.data?.login).toMatchObject({ __typename: 'AccountDisabledError', code: 'ACCOUNT_DISABLED' });
  });

  it('lets a re-enabled user log in again, while the tokens issued before disabling stay dead', async () => {
    const victim = await registerUser(t);
    expect((await t.gql(SET_USER_ACTIVE, { userId: victim.userId, active: false }, { token: admin.accessToken })).errors).toBeUndefined();
    t.clock.advance(1);
    const enable = await t.gql(SET_USER_ACTIVE, { userId: victim.userId, active: true }, { token: admin.accessToken });
    expect(enable.errors).toBeUndefined();
    expect(enable.data?.setUserActive).toEqual({ id: victim.userId, active: true });
    t.clock.advance(1);
    const login = await t.gql(LOGIN, { input: { email: victim.email, password: GOOD_PASSWORD } });
    expect(login.data?.login.__typename).toBe('AuthPayload');
    const me = await t.gql(ME_FULL, {}, { token: login.data?.login.accessToken });
    expect(me.errors).toBeUndefined();
    expect(me.data?.me.id).toBe(victim.userId);
    expectRefused(await t.gql(ME_FULL, {}, { token: victim.accessToken }), 'me', 'UNAUTHENTICATED', { nullable: true });
    const refresh = await t.gql(REFRESH_OPERATION, { token: victim.refreshToken });
    expect(refresh.data?.refresh.__typename).toBe('InvalidRefreshTokenError');
  });

  it('refuses adminStats with FORBIDDEN on the next request after users:read is removed from the role', async () => {
    const reader = await registerWithPermissions(t, ['users:read']);
    const before = await t.gql(ADMIN_STATS, {}, { token: reader.accessToken });
    expect(before.errors).toBeUndefined();
    await removePermission(t, reader.role, 'users:read');
    const after = await t.gql(ADMIN_STATS, {}, { token: reader.accessToken });
    expectRefused(after, 'adminStats', 'FORBIDDEN', { nullable: false });
  });
});

describe('the roles claim of a token is ignored', () => {
  it("refuses adminStats with FORBIDDEN to a real-key token whose roles claim says admin", async () => {
    const plain = await registerUser(t);
    const real = claimsOf(plain.accessToken);
    expect(real.roles).toEqual(['user']);
    const forged = await mint({ claims: { ...real, jti: randomUUID(), roles: ['admin'] } });
    // The forged token is accepted as a valid sign-in ...
    const me = await t.gql(ME_FULL, {}, { token: forged });
    expect(me.errors).toBeUndefined();
    expect(me.data?.me.id).toBe(plain.userId);
    // ... but grants nothing more.
    const res = await t.gql(ADMIN_STATS, {}, { token: forged });
    expectRefused(res, 'adminStats', 'FORBIDDEN', { nullable: false });
  });

  it("answers User.roles ['user'] from me for a token whose roles claim says admin", async () => {
    const plain = await registerUser(t);
    const forged = await mint({ claims: { ...claimsOf(plain.accessToken), jti: randomUUID(), roles: ['admin'] } });
    const me = await t.gql(ME_FULL, {}, { token: forged });
    expect(me.errors).toBeUndefined();
    expect(me.data?.me).toMatchObject({ roles: ['user'], permissions: [] });
  });

  it("keeps a demoted admin's claim of admin worthless: FORBIDDEN on grantRole", async () => {
    const a = await registerAdmin(t);
    // Signed in after the grant, so the token's own roles claim says admin.
    const b = await loginUser(t, (await registerAdmin(t)).email);
    expect(claimsOf(b.accessToken).roles).toEqual(['admin', 'user']);
    expect((await t.gql(REVOKE_ROLE, { userId: b.userId, role: 'admin' }, { token: a.accessToken })).errors).toBeUndefined();
    const target = await registerUser(t);
    const res = await t.gql(GRANT_ROLE, { userId: target.userId, role: 'admin' }, { token: b.accessToken });
    expectRefused(res, 'grantRole', 'FORBIDDEN', { nullable: false });
    expect(await storedRoles(t, target.userId)).toEqual(['user']);
  });
});
