import { builder } from '../builder.js';
import { guarded } from '../policy.js';

const AdminStats = builder
  .objectRef<{ totalUsers: number; activeUsers: number; activeSessions: number }>('AdminStats')
  .implement({
    fields: (t) => ({
      totalUsers: t.exposeInt('totalUsers'),
      activeUsers: t.exposeInt('activeUsers', { description: 'Users not disabled.' }),
      activeSessions: t.exposeInt('activeSessions', { description: 'Sessions neither revoked nor expired.' }),
    }),
  });

builder.queryField('adminStats', (t) =>
  t.field({
    type: AdminStats,
    ...guarded({ permission: 'users:read' }, 'Counts for an administration dashboard.'),
    resolve: (_root, _args, ctx) => ctx.services.directory.adminStats(),
  }),
);
