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
      resolve: (role, _args, ctx) => ctx.permissionsOfRole(role.name),
    }),
  }),
});

builder.queryField('roles', (t) =>
  t.field({
    type: [RoleRef],
    ...guarded({ authenticated: true }, 'Every role and the permissions it grants.'),
    resolve: (_root, _args, ctx) => ctx.services.directory.roles(),
  }),
);
