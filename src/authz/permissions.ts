import { eq, inArray } from 'drizzle-orm';
import type { Database } from '../db/client.js';
import { rolePermissions, userRoles } from '../db/schema.js';

/**
 * Every permission a role can grant, with its description: the one catalogue. Migration 0001
 * seeds exactly these (a test holds the two together); a policy names a `Permission`, so a
 * misspelt one fails the type check instead of locking everyone out of its field.
 */
export const PERMISSIONS = {
  'users:read': 'Look up any user and read their email and activity',
  'users:write': 'Enable and disable accounts',
  'roles:grant': 'Grant and revoke roles',
  'sessions:revoke': "List and revoke other users' sessions",
  'audit:read': 'Read the audit log',
} as const;

/** A permission of the catalogue. */
export type Permission = keyof typeof PERMISSIONS;

/** The built-in administrator role. */
export const ADMIN_ROLE = 'admin';

/** What a user may do, as stored right now (never read from a token). */
export interface Access {
  roles: string[];
  permissions: string[];
}

/** Loads users' roles and the permissions those roles grant, in one query however many users. */
export async function loadAccessOf(db: Database, userIds: readonly string[]): Promise<Map<string, Access>> {
  const rows =
    userIds.length === 0
      ? []
      : await db
          .select({ userId: userRoles.userId, role: userRoles.role, permission: rolePermissions.permission })
          .from(userRoles)
          .leftJoin(rolePermissions, eq(rolePermissions.role, userRoles.role))
          .where(inArray(userRoles.userId, [...userIds]));
  const sets = new Map(userIds.map((id) => [id, { roles: new Set<string>(), permissions: new Set<string>() }]));
  for (const row of rows) {
    const of = sets.get(row.userId)!;
    of.roles.add(row.role);
    if (row.permission) of.permissions.add(row.permission);
  }
  return new Map([...sets].map(([id, of]) => [id, { roles: [...of.roles].sort(), permissions: [...of.permissions].sort() }]));
}

/** Loads a user's roles and the permissions those roles grant, in one query. */
export async function loadAccess(db: Database, userId: string): Promise<Access> {
  return (await loadAccessOf(db, [userId])).get(userId)!;
}
