import { eq } from 'drizzle-orm';
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

/** Loads a user's roles and the permissions those roles grant, in one query. */
export async function loadAccess(db: Database, userId: string): Promise<Access> {
  const rows = await db
    .select({ role: userRoles.role, permission: rolePermissions.permission })
    .from(userRoles)
    .leftJoin(rolePermissions, eq(rolePermissions.role, userRoles.role))
    .where(eq(userRoles.userId, userId));
  const roles = new Set<string>();
  const permissions = new Set<string>();
  for (const row of rows) {
    roles.add(row.role);
    if (row.permission) permissions.add(row.permission);
  }
  return { roles: [...roles].sort(), permissions: [...permissions].sort() };
}
