/**
 * Helpers for authorization tests: making admins the way the CLI does, custom roles holding
 * chosen permissions, and the admin operations as a client sends them.
 */
import { randomBytes } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { expect } from 'vitest';
import type { Permission } from '../../src/authz/permissions.js';
import { rolePermissions, roles, userRoles, users } from '../../src/db/schema.js';
import type { GraphQLResponse, TestApp } from './app.js';
import { registerUser, type Session } from './operations.js';

/** Every permission the seed migration creates, sorted. */
export const ALL_PERMISSIONS = ['audit:read', 'roles:grant', 'sessions:revoke', 'users:read', 'users:write'];

export const USER_FIELDS = 'id email name roles permissions active emailVerified createdAt lastLoginAt';

export const USER_BY_ID = `query User($id: ID!) { user(id: $id) { ${USER_FIELDS} } }`;
export const USER_BY_ID_PUBLIC = `query User($id: ID!) { user(id: $id) { id name roles active } }`;
export const ME_FULL = `query { me { ${USER_FIELDS} } }`;
export const USERS = `query Users($first: Int, $after: String, $search: String) {
  users(first: $first, after: $after, search: $search) {
    edges { cursor node { id email name createdAt } }
    pageInfo { hasNextPage endCursor }
  }
}`;
export const ADMIN_STATS = `query { adminStats { totalUsers activeUsers activeSessions } }`;
export const ROLES = `query { roles { name description permissions } }`;
export const GRANT_ROLE = `mutation Grant($userId: ID!, $role: String!) { grantRole(userId: $userId, role: $role) { id roles } }`;
export const REVOKE_ROLE = `mutation Revoke($userId: ID!, $role: String!) { revokeRole(userId: $userId, role: $role) { id roles } }`;
export const SET_USER_ACTIVE = `mutation SetActive($userId: ID!, $active: Boolean!) { setUserActive(userId: $userId, active: $active) { id active } }`;

/** Registers a user and makes them an admin the way the CLI does (as the operator). */
export async function registerAdmin(t: TestApp, options: { email?: string; name?: string } = {}): Promise<Session> {
  const session = await registerUser(t, options);
  await t.services.roleAdmin.grantRole({ kind: 'operator' }, session.userId, 'admin');
  // As if an operator granted it elsewhere: the change reaches this instance before its next request.
  await t.services.changes.sync();
  return session;
}

/** Creates a role holding exactly these permissions; returns its (unique) name. */
export async function createRole(t: TestApp, permissions: Permission[], prefix = 'custom'): Promise<string> {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  await t.database.db.insert(roles).values({ name, description: `test role with ${permissions.join(', ') || 'nothing'}` });
  if (permissions.length > 0) {
    await t.database.db.insert(rolePermissions).values(permissions.map((permission) => ({ role: name, permission })));
  }
  await t.services.changes.sync();
  return name;
}

/** Registers a user holding a fresh custom role with these permissions. */
export async function registerWithPermissions(t: TestApp, permissions: Permission[]): Promise<Session & { role: string }> {
  const role = await createRole(t, permissions);
  const session = await registerUser(t);
  await t.services.roleAdmin.grantRole({ kind: 'operator' }, session.userId, role);
  await t.services.changes.sync();
  return { ...session, role };
}

/** Removes one permission from a role, straight in the database. */
export async function removePermission(t: TestApp, role: string, permission: Permission): Promise<void> {
  await t.database.db
    .delete(rolePermissions)
    .where(and(eq(rolePermissions.role, role), eq(rolePermissions.permission, permission)));
  await t.services.changes.sync();
}

/** Ids of users holding the admin role whose account is active. */
export async function activeAdminIds(t: TestApp): Promise<string[]> {
  const rows = await t.database.db
    .select({ id: users.id })
    .from(userRoles)
    .innerJoin(users, eq(users.id, userRoles.userId))
    .where(and(eq(userRoles.role, 'admin'), eq(users.active, true)));
  return rows.map((r) => r.id).sort();
}

/** The stored role names of a user, sorted. */
export async function storedRoles(t: TestApp, userId: string): Promise<string[]> {
  const rows = await t.database.db.select({ role: userRoles.role }).from(userRoles).where(eq(userRoles.userId, userId));
  return rows.map((r) => r.role).sort();
}

/**
 * Asserts a GraphQL error on one field with this extensions.code (HTTP 200, exactly one error,
 * on that path) and returns it.
 */
export function expectFieldError(res: GraphQLResponse, field: string, code: string) {
  expect(res.status).toBe(200);
  expect(res.errors, JSON.stringify(res)).toHaveLength(1);
  const error = res.errors![0]!;
  expect(error.path).toEqual([field]);
  expect(error.extensions?.code).toBe(code);
  return error as { message: string; path?: string[]; extensions?: { code?: string; field?: string } };
}

/** Asserts a refused field: the code above, and the field's value null (or data null for a non-null field). */
export function expectRefused(res: GraphQLResponse, field: string, code: string, options: { nullable: boolean }) {
  const error = expectFieldError(res, field, code);
  if (options.nullable) expect(res.data).toEqual({ [field]: null });
  else expect(res.data ?? null).toBeNull();
  return error;
}
