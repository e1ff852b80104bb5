import { eq } from 'drizzle-orm';
import type { Database } from '../db/client.js';
import { rolePermissions, userRoles } from '../db/schema.js';

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
