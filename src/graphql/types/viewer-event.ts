import { VIEWER_EVENT_TYPES } from '../../db/change-feed.js';
import type { ViewerEvent } from '../../sessions/viewer-events.js';
import { fromEpochSeconds } from '../../time.js';
import { describeErrors, unauthenticatedError, withTypedErrors } from '../access-errors.js';
import { builder } from '../builder.js';
import { serviceUnavailableError } from '../outage-error.js';
import { guarded } from '../policy.js';

const ViewerEventTypeEnum = builder.enumType('ViewerEventType', {
  description: 'What happened to the signed-in account.',
  values: {
    SESSION_REVOKED: { description: 'One session was revoked (signed out, revoked from another device or by an admin, a replayed refresh token).' },
    SIGNED_OUT_EVERYWHERE: { description: 'Every session was revoked at once (log out everywhere, or an admin revoking all of them).' },
    PASSWORD_CHANGED: { description: 'The password was changed or reset: every session was revoked.' },
    ROLES_CHANGED: { description: 'A role was granted or revoked: permissions changed; sessions still work.' },
    ACCOUNT_DISABLED: { description: 'The account was disabled (or deleted): every session was revoked.' },
  } satisfies Record<(typeof VIEWER_EVENT_TYPES)[number], { description: string }>,
});

const ViewerEventRef = builder.objectRef<ViewerEvent>('ViewerEvent').implement({
  description: 'An event of the signed-in account, pushed by the viewerEvents subscription.',
  fields: (t) => ({
    type: t.expose('type', { type: ViewerEventTypeEnum }),
    at: t.expose('at', { type: 'DateTime', description: 'When this server received the event.' }),
    sessionId: t.exposeID('sessionId', { nullable: true, description: 'The revoked session (SESSION_REVOKED only).' }),
  }),
});

builder.subscriptionFields((t) => ({
  viewerEvents: t.field({
    type: ViewerEventRef,
    ...guarded(
      { authenticated: true },
      'Events of your own account, from whichever server made the change, over Server-Sent Events. The stream ' +
        'ends after an event that ends the session it was opened with (SESSION_REVOKED of that session, ' +
        'SIGNED_OUT_EVERYWHERE, PASSWORD_CHANGED, ACCOUNT_DISABLED). It ends with no event when the access token it was ' +
        'opened with expires or its session reaches its end (refresh, then subscribe again with the new token), and when the server ' +
        'may have missed a change (its database listener was lost), when its client stopped reading and events piled ' +
        'up, or when the server shuts down: subscribe again, and query what you need to know. SERVICE_UNAVAILABLE while ' +
        `the server cannot follow changes or is shutting down.\n\n${describeErrors(['TOO_MANY_STREAMS'])}`,
    ),
    subscribe: async (_root, _args, ctx) => {
      const viewer = await ctx.viewer();
      if (viewer.kind !== 'user') throw unauthenticatedError(viewer);
      const { services } = ctx;
      const { sub: userId, sid: sessionId, exp } = viewer.claims;
      // Authorized until the token expires or its session ends, whichever comes first; not longer
      // (a stolen token must not watch the account forever). A session's end never moves.
      const session = await services.memory.session(sessionId);
      const tokenEnds = fromEpochSeconds(exp);
      const endsAt = session && session.expiresAt < tokenEnds ? session.expiresAt : tokenEnds;
      const events = await withTypedErrors(async () => {
        // Checked in the tick the stream registers: not while the listener is down (the stream
        // could miss a change), nor once shutdown started draining (it would hold the drain).
        if (!services.changes.live() || !services.viewerEvents.accepting()) throw serviceUnavailableError();
        return services.viewerEvents.open({ userId, sessionId, endsAt });
      });
      // Checked again now that the stream listens: a revocation between the request's check and
      // the stream's start would otherwise go unannounced, the stream open for a dead session.
      let revoked: Awaited<ReturnType<typeof services.revocations.isRevoked>>;
      try {
        revoked = await services.revocations.isRevoked(viewer.claims, services.clock.now());
      } catch (err) {
        await events.return?.(); // a failed check must not leave the stream registered
        throw err;
      }
      if (revoked) {
        await events.return?.();
        throw unauthenticatedError({ kind: 'refused', reason: revoked });
      }
      return events;
    },
    resolve: (event) => event,
  }),
}));
