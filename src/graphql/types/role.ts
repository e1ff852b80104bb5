import { asc, eq } from 'drizzle-orm';
import { rolePermissions, roles } from '../../db/schema.js';
import { builder } from '../builder.js';
import { guarded } from '../policy.js';

interface RoleShape {
  name: string;
  description: string;
}

const RoleRef = builder.objectRef<RoleShape>('Role').implement({
  description: 'A named set of permissions.',
  fields: (t) => ({
    name: t.exposeString('name'),
    description: t.exposeString('description'),
    permissions: t.stringList({
      resolve: async (role, _args, ctx) => {
        const rows = await ctx.services.db
          .select({ permission: rolePermissions.permission })
          .from(rolePermissions)
          .where(eq(rolePermissions.role, role.name))
          .orderBy(asc(rolePermissions.permission));
        return rows.map((r) => r.permission);
      },
    }),
  }),
});

builder.queryField('roles', (t) =>
  t.field({
    type: [RoleRef],
    ...guarded({ authenticated: true }, 'Every role and the permissions it grants.'),
    resolve: (_root, _args, ctx) => ctx.services.db.select().from(roles).orderBy(asc(roles.name)),
  }),
);
