import { MAX_PAGE_SIZE } from '../../authz/user-directory.js';
import { withTypedErrors } from '../access-errors.js';
import { builder } from '../builder.js';
import { guarded } from '../policy.js';
import { connectionOf } from './connection.js';
import { UserRef } from './user.js';

const UserConnection = connectionOf('User', UserRef, 'A page of users, oldest first.');

builder.queryField('users', (t) =>
  t.field({
    type: UserConnection,
    args: {
      first: t.arg.int({ defaultValue: 20, description: `1 to ${MAX_PAGE_SIZE}.` }),
      after: t.arg.string({ description: 'The `endCursor` of the previous page.' }),
      search: t.arg.string({ description: 'Case-insensitive substring of email or name.' }),
    },
    ...guarded({ permission: 'users:read' }, 'All users, oldest first, with cursor pagination.'),
    resolve: (_root, args, ctx) =>
      withTypedErrors(() => ctx.services.directory.listUsers({ first: args.first ?? 20, after: args.after, search: args.search })),
  }),
);
