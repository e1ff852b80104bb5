import type { Context } from '../context.js';
import { SessionEndedError } from '../sessions/sessions.js';
import type { AccessClaims } from '../tokens/access-tokens.js';
import { accessError, unauthenticatedError } from './access-errors.js';

/** The viewer's access-token claims, or UNAUTHENTICATED (for fields whose policy has let only signed-in users through). */
export async function claimsOf(ctx: Context): Promise<AccessClaims> {
  const viewer = await ctx.viewer();
  if (viewer.kind !== 'user') throw unauthenticatedError(viewer);
  return viewer.claims;
}

/**
 * Runs a change of the viewer's ways in (their password, factors, identities) for their session.
 * A session signed out while the change waited for the user's lock (SessionEndedError: the owner
 * changed something meanwhile, from another session) is answered as its next request would be,
 * UNAUTHENTICATED with reason REVOKED; nothing was changed.
 */
export async function changeAsViewer<T>(ctx: Context, change: (claims: AccessClaims) => Promise<T>): Promise<T> {
  const claims = await claimsOf(ctx);
  try {
    return await change(claims);
  } catch (err) {
    if (err instanceof SessionEndedError) throw accessError('UNAUTHENTICATED', { reason: 'REVOKED' });
    throw err;
  }
}
