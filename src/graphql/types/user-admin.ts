import type { Actor } from '../../authz/role-admin.js';
import type { Context } from '../../context.js';
import { UserNotFoundError } from '../../errors.js';
import { rowId } from '../arguments.js';
import { describeErrors, withTypedErrors } from '../access-errors.js';
import { builder } from '../builder.js';
import { guarded } from '../policy.js';
import { UserRef } from './user.js';

/** Runs an administrative change as the viewer; failures carry their ErrorCode in extensions.code. */
async function asViewer<T>(ctx: Context, userId: string | null | undefined, work: (actor: Actor, userId: string) => Promise<T>) {
  const viewer = await ctx.viewer();
  if (viewer.kind !== 'user') throw new Error('unreachable: the field requires a signed-in user');
  return withTypedErrors(async () => {
    if (!userId) throw new UserNotFoundError();
    const user = await work({ kind: 'user', userId: viewer.claims.sub, request: ctx.request }, userId);
    // Later fields of this request (User.roles, another mutation) must see the change.
    ctx.forgetAccess(userId);
    return user;
  });
}

/** Each field names exactly the codes it can answer with. */
const ROLE_ERRORS = describeErrors(['NOT_FOUND', 'UNKNOWN_ROLE', 'SELF_CHANGE', 'ROLE_NOT_HELD', 'LAST_ADMIN']);

builder.mutationFields((t) => ({
  grantRole: t.field({
    type: UserRef,
    args: { userId: t.arg.id({ required: true }).validate(rowId), role: t.arg.string({ required: true }) },
    ...guarded({ permission: 'roles:grant' }, `Gives a user a role you hold (effective on their next request).\n\n${ROLE_ERRORS}`),
    resolve: (_root, args, ctx) =>
      asViewer(ctx, args.userId, (actor, id) => ctx.services.roleAdmin.grantRole(actor, id, args.role)),
  }),
  revokeRole: t.field({
    type: UserRef,
    args: { userId: t.arg.id({ required: true }).validate(rowId), role: t.arg.string({ required: true }) },
    ...guarded({ permission: 'roles:grant' }, `Takes a role you hold from a user (effective on their next request).\n\n${ROLE_ERRORS}`),
    resolve: (_root, args, ctx) =>
      asViewer(ctx, args.userId, (actor, id) => ctx.services.roleAdmin.revokeRole(actor, id, args.role)),
  }),
  setUserActive: t.field({
    type: UserRef,
    args: { userId: t.arg.id({ required: true }).validate(rowId), active: t.arg.boolean({ required: true }) },
    ...guarded(
      { permission: 'users:write' },
      `Enables or disables an account. Disabling revokes all the user's sessions and tokens at once.\n\n${describeErrors(['NOT_FOUND', 'SELF_CHANGE', 'LAST_ADMIN'])}`,
    ),
    resolve: (_root, args, ctx) =>
      asViewer(ctx, args.userId, (actor, id) => ctx.services.roleAdmin.setUserActive(actor, id, args.active)),
  }),
}));
