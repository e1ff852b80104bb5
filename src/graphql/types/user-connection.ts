import { listUsers, MAX_PAGE_SIZE, type UserPage } from '../../authz/user-directory.js';
import type { UserRow } from '../../db/schema.js';
import { withTypedErrors } from '../access-errors.js';
import { builder } from '../builder.js';
import { guarded } from '../policy.js';
import { UserRef } from './user.js';

const PageInfo = builder.objectRef<{ hasNextPage: boolean; endCursor: string | null }>('PageInfo').implement({
  fields: (t) => ({
    hasNextPage: t.exposeBoolean('hasNextPage'),
    endCursor: t.exposeString('endCursor', { nullable: true, description: 'Pass as `after` to get the next page.' }),
  }),
});

const UserEdge = builder.objectRef<{ node: UserRow; cursor: string }>('UserEdge').implement({
  fields: (t) => ({
    cursor: t.exposeString('cursor'),
    node: t.field({ type: UserRef, resolve: (edge) => edge.node }),
  }),
});

const UserConnection = builder.objectRef<UserPage>('UserConnection').implement({
  description: 'A page of users, oldest first.',
  fields: (t) => ({
    edges: t.field({
      type: [UserEdge],
      resolve: (page) => page.users.map((node) => ({ node, cursor: page.cursorOf(node) })),
    }),
    pageInfo: t.field({
      type: PageInfo,
      resolve: (page) => {
        const last = page.users.at(-1);
        return { hasNextPage: page.hasNextPage, endCursor: last ? page.cursorOf(last) : null };
      },
    }),
  }),
});

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
      withTypedErrors(() => listUsers(ctx.services.db, { first: args.first ?? 20, after: args.after, search: args.search })),
  }),
);
