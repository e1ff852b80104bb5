import type { Permission } from '../../authz/permissions.js';
import type { Context } from '../../context.js';
import type { Account } from '../../accounts/accounts.js';
import type { SessionRow } from '../../db/schema.js';
import { accessError, describeErrors, unauthenticatedError, withTypedErrors } from '../access-errors.js';
import { rowId } from '../arguments.js';
import { builder } from '../builder.js';
import { guarded } from '../policy.js';
import { UserRef } from './user.js';

const SESSIONS_REVOKE = 'sessions:revoke' satisfies Permission;

/** The signed-in viewer, for fields whose policy has already required one. */
async function signedIn(ctx: Context) {
  const viewer = await ctx.viewer();
  if (viewer.kind !== 'user') throw unauthenticatedError(viewer);
  return { userId: viewer.claims.sub, sessionId: viewer.claims.sid, request: ctx.request };
}

const SessionRef = builder.objectRef<SessionRow>('Session').implement({
  description: 'A signed-in device: one sign-in and the refresh tokens and access tokens issued in it.',
  fields: (t) => ({
    id: t.exposeID('id'),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the user signed in.' }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', description: 'The last refresh (not every request).' }),
    expiresAt: t.expose('expiresAt', {
      type: 'DateTime',
      description: 'The absolute end of the session (SESSION_MAX_AGE after sign-in).',
    }),
    userAgent: t.exposeString('userAgent', { nullable: true }),
    ip: t.exposeString('ip', { nullable: true }),
    current: t.boolean({
      description: 'True for the session of the access token this request was made with.',
      resolve: async (session, _args, ctx) => {
        const viewer = await ctx.viewer();
        return viewer.kind === 'user' && viewer.claims.sid === session.id;
      },
    }),
  }),
});

builder.objectField(UserRef, 'sessions', (t) =>
  t.field({
    type: [SessionRef],
    ...guarded(
      { self: (user: Account) => user.id, permission: SESSIONS_REVOKE },
      'Live sessions (neither revoked nor expired), newest first.',
    ),
    resolve: (user, _args, ctx) => ctx.services.sessionAdmin.listSessions(user.id),
  }),
);

builder.mutationFields((t) => ({
  revokeSession: t.boolean({
    args: { id: t.arg.id({ required: true }).validate(rowId) },
    ...guarded(
      {
        self: (_root: unknown, args: { id: string | null }, ctx) => ctx.services.sessionAdmin.ownerOf(args.id),
        permission: SESSIONS_REVOKE,
      },
      'Revokes one session: its refresh token and every access token issued in it stop working on their next use. ' +
        'Anything not allowed is FORBIDDEN, whether or not the session exists. True when a live session was ' +
        'revoked; false when it was revoked already (or, with the permission, does not exist). The refresh ' +
        'cookie this request carries (REFRESH_TOKEN_TRANSPORT cookie or both) is cleared when its session is ' +
        'over (the one revoked, or one that ended before), and kept while it is live.',
    ),
    resolve: async (_root, { id }, ctx) => {
      const viewer = await signedIn(ctx);
      const mayRevokeAny = (await ctx.access())?.permissions.includes(SESSIONS_REVOKE) ?? false;
      const result = await ctx.services.sessionAdmin.revokeSession({ ...viewer, mayRevokeAny }, id ?? null);
      if (result.kind === 'forbidden') throw accessError('FORBIDDEN');
      // The refresh cookie goes when its session did (or was over already), whichever session
      // the access token is of: in both mode they may differ.
      await ctx.refreshCookie.release();
      return result.revoked;
    },
  }),
  revokeOtherSessions: t.int({
    ...guarded(
      { authenticated: true },
      'Revokes all your sessions but the one this request is made in (sign out other devices); returns how many. ' +
        'The refresh cookie this request carries is cleared when its session is one of them (or over already).',
    ),
    resolve: async (_root, _args, ctx) => {
      const viewer = await signedIn(ctx);
      const revoked = await ctx.services.sessionAdmin.revokeOtherSessions(viewer, viewer.sessionId);
      // In both mode the cookie may be of one of the sessions just ended.
      await ctx.refreshCookie.release();
      return revoked;
    },
  }),
  revokeUserSessions: t.int({
    args: { userId: t.arg.id({ required: true }).validate(rowId) },
    ...guarded(
      { permission: SESSIONS_REVOKE },
      `Revokes every session of a user; returns how many. The refresh cookie this request carries is cleared when ` +
        `its session is one of them (or over already).\n\n${describeErrors(['NOT_FOUND'])}`,
    ),
    resolve: async (_root, { userId }, ctx) => {
      const viewer = await signedIn(ctx);
      const revoked = await withTypedErrors(() => ctx.services.sessionAdmin.revokeUserSessions(viewer, userId ?? null));
      // An administrator may end their own sessions this way, the cookie's among them.
      await ctx.refreshCookie.release();
      return revoked;
    },
  }),
}));
