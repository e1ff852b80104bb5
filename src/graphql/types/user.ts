import { findUserById, findUserRoles } from '../../auth/accounts.js';
import type { UserRow } from '../../db/schema.js';
import { builder } from '../builder.js';

export const UserRef = builder.objectRef<UserRow>('User').implement({
  description: 'An account.',
  fields: (t) => ({
    id: t.exposeID('id'),
    email: t.exposeString('email', { description: 'The normalized (trimmed, NFKC, lower-cased) address.' }),
    name: t.exposeString('name', { nullable: true }),
    roles: t.stringList({
      description: 'Names of the roles held, sorted.',
      resolve: (user, _args, ctx) => findUserRoles(ctx.services.db, user.id),
    }),
    emailVerified: t.exposeBoolean('emailVerified'),
    active: t.exposeBoolean('active', { description: 'False once an administrator has disabled the account.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.queryField('me', (t) =>
  t.field({
    type: UserRef,
    nullable: true,
    description: 'The signed-in user. Requires a valid access token (UNAUTHENTICATED otherwise).',
    authScopes: { authenticated: true },
    resolve: async (_root, _args, ctx) => {
      const viewer = await ctx.viewer();
      return viewer.kind === 'user' ? findUserById(ctx.services.db, viewer.claims.sub) : null;
    },
  }),
);
