/**
 * The permission catalogue in TypeScript (what policies may name) and the seed migration (what
 * roles can actually hold) are one list: a permission on one side only is either a field nobody
 * can be granted or a grant no field checks.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_ROLE, PERMISSIONS } from '../../src/authz/permissions.js';
import type { DatabaseHandle } from '../../src/db/client.js';
import { permissions, rolePermissions } from '../../src/db/schema.js';
import { openTestDatabase } from '../support/database.js';

let database: DatabaseHandle;
beforeAll(async () => {
  database = await openTestDatabase();
});
afterAll(async () => {
  await database?.close();
});

const catalogue = Object.entries(PERMISSIONS)
  .map(([name, description]) => ({ name, description }))
  .sort((a, b) => a.name.localeCompare(b.name));

describe('the permission catalogue', () => {
  it('is exactly the permissions the migrations seed, with the same descriptions', async () => {
    const seeded = await database.db
      .select({ name: permissions.name, description: permissions.description })
      .from(permissions);
    expect(seeded.sort((a, b) => a.name.localeCompare(b.name))).toEqual(catalogue);
  });

  it('is exactly what the admin role holds after the migrations', async () => {
    const granted = await database.db
      .select({ permission: rolePermissions.permission })
      .from(rolePermissions)
      .where(eq(rolePermissions.role, ADMIN_ROLE));
    expect(granted.map((r) => r.permission).sort()).toEqual(catalogue.map((p) => p.name));
  });
});
