import type { Account } from '../../accounts/accounts.js';
import { rowId } from '../arguments.js';
import { builder } from '../builder.js';
import { guarded } from '../policy.js';

export const UserRef = builder.objectRef<Account>('User').implement({
  description: 'An account.',
  fields: (t) => ({
    id: t.exposeID('id'),
    email: t.exposeString('email', {
      ...guarded({ self: (user: Account) => user.id, permission: 'users:read' }, 'The normalized (trimmed, NFKC, lower-cased) address.'),
    }),
    name: t.exposeString('name', { nullable: true }),
    roles: t.stringList({
      description: 'Names of the roles held, sorted.',
      resolve: async (user, _args, ctx) => (await ctx.accessOf(user.id)).roles,
    }),
    permissions: t.stringList({
      description: 'Permissions granted by those roles, sorted.',
      resolve: async (user, _args, ctx) => (await ctx.accessOf(user.id)).permissions,
    }),
    emailVerified: t.exposeBoolean('emailVerified'),
    active: t.exposeBoolean('active', { description: 'False once an administrator has disabled the account.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    lastLoginAt: t.expose('lastLoginAt', {
      type: 'DateTime',
      nullable: true,
      ...guarded({ self: (user: Account) => user.id, permission: 'users:read' }, 'When the user last signed in.'),
    }),
  }),
});

builder.queryFields((t) => ({
  me: t.field({
    type: UserRef,
    nullable: true,
    ...guarded({ authenticated: true }, 'The signed-in user (UNAUTHENTICATED without a valid access token).'),
    resolve: async (_root, _args, ctx) => {
      const viewer = await ctx.viewer();
      return viewer.kind === 'user' ? ctx.services.directory.userById(viewer.claims.sub) : null;
    },
  }),
  user: t.field({
    type: UserRef,
    nullable: true,
    args: { id: t.arg.id({ required: true }).validate(rowId) },
    // Checked before the lookup, so a caller without the permission learns nothing about
    // which ids exist: FORBIDDEN either way.
    ...guarded(
      { self: (_root: unknown, args: { id: string | null }) => args.id, permission: 'users:read' },
      'A user by id, or null if there is none.',
    ),
    resolve: (_root, { id }, ctx) => (id ? ctx.services.directory.userById(id) : null),
  }),
}));
