/**
 * Issue 13 (review): what bounds a viewerEvents stream, over a real port with graphql-sse's
 * client. A stream lives no longer than what authorized it: the access token it was opened with
 * and that token's session (time from the injected clock).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { GRANT_ROLE } from '../support/authz.js';
import { REFRESH_BRIEF, registerUser, type Session } from '../support/operations.js';
import { ARRIVES, expectEnded, nextEvent, openViewerEvents, serveViewerEvents } from '../support/viewer-events.js';

let app: Awaited<ReturnType<typeof serveViewerEvents>>;
beforeAll(async () => {
  app = await serveViewerEvents();
});
afterAll(() => app?.close());

const open = (session: Session) => openViewerEvents(app.t, app.server.url, session.accessToken);

async function expectNoStreams() {
  await vi.waitFor(() => expect(app.t.services.viewerEvents.openStreams()).toBe(0), ARRIVES);
}

describe('viewerEvents stream lifetime', () => {
  it('ends the stream, with no event, when the access token it was opened with expires', async () => {
    const user = await registerUser(app.t);
    const stream = await open(user);
    app.t.clock.advance(app.t.config.accessTokenTtl - 1);
    // A second before expiry it is still open and delivering.
    await app.t.gql(GRANT_ROLE, { userId: user.userId, role: 'admin' }, { token: app.admin.accessToken });
    expect(await nextEvent(stream)).toMatchObject({ type: 'ROLES_CHANGED' });
    app.t.clock.advance(1);
    await expectEnded(stream);
    await expectNoStreams();
  });

  it('ends the stream when its session reaches SESSION_MAX_AGE, before a later-expiring access token', async () => {
    const user = await registerUser(app.t);
    // Refreshed every 6 days (refresh tokens live 7) up to 5 minutes before the session's end:
    // the access token then issued would live 10 minutes past it.
    let tokens = user;
    const refreshAfter = async (seconds: number) => {
      app.t.clock.advance(seconds);
      const res = await app.t.gql(REFRESH_BRIEF, { token: tokens.refreshToken });
      expect(res.data?.refresh.__typename, JSON.stringify(res)).toBe('AuthPayload');
      tokens = { ...tokens, ...res.data!.refresh };
    };
    const day = 86_400;
    for (let i = 0; i < 4; i += 1) await refreshAfter(6 * day);
    await refreshAfter(app.t.config.sessionMaxAge - 24 * day - 300);
    expect(app.t.config.accessTokenTtl).toBeGreaterThan(300);
    const stream = await open(tokens);
    app.t.clock.advance(299);
    expect(app.t.services.viewerEvents.openStreams()).toBe(1);
    app.t.clock.advance(1);
    await expectEnded(stream);
    await expectNoStreams();
  });
});
