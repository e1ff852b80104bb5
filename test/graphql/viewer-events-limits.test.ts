/**
 * Issue 13 (review): what bounds a viewerEvents stream, over a real port with graphql-sse's
 * client. A stream lives no longer than what authorized it: the access token it was opened with
 * and that token's session (time from the injected clock). A user, and the instance, hold a
 * bounded number of streams; a stream whose client does not read holds a bounded queue.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { GRANT_ROLE } from '../support/authz.js';
import http from 'node:http';
import { sql } from 'drizzle-orm';
import { CHANGE_CHANNEL } from '../../src/db/change-feed.js';
import { MAX_QUEUED_EVENTS, MAX_STREAMS_PER_SESSION, MAX_STREAMS_PER_USER } from '../../src/sessions/viewer-events.js';
import { loginUser, REFRESH_BRIEF, registerUser, type Session } from '../support/operations.js';
import * as events from '../support/viewer-events.js';
import { ARRIVES, expectEnded, nextEvent, VIEWER_EVENTS, type ViewerEventStream } from '../support/viewer-events.js';

/** This file's instance cap: above one user's, so both can be reached. */
const INSTANCE_CAP = MAX_STREAMS_PER_USER + 5;

let app: Awaited<ReturnType<typeof events.serveViewerEvents>>;
beforeAll(async () => {
  app = await events.serveViewerEvents({ VIEWER_EVENTS_MAX_STREAMS: String(INSTANCE_CAP) });
});
afterAll(() => app?.close());

const open = (session: Session) => events.openViewerEvents(app.t, app.server.url, session.accessToken);

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

/** The one result of a refused subscription: its error's code and message; then the stream ends. */
async function refusal(session: Session): Promise<{ code?: string; message: string }> {
  const refused = events.subscribeViewerEvents(app.server.url, session.accessToken);
  const first = await refused.next();
  expect(first.done).toBe(false);
  const [error] = first.value.errors as { message: string; extensions?: { code?: string } }[];
  await expectEnded(refused);
  return { code: error?.extensions?.code, message: error!.message };
}

describe('viewerEvents stream limits', () => {
  it(`bounds the streams of one user, over all sessions, to ${MAX_STREAMS_PER_USER}: one more is TOO_MANY_STREAMS`, async () => {
    const user = await registerUser(app.t);
    const streams: ViewerEventStream[] = [];
    for (let s = 0; s < MAX_STREAMS_PER_USER / MAX_STREAMS_PER_SESSION; s += 1) {
      const session = s === 0 ? user : await loginUser(app.t, user.email);
      for (let i = 0; i < MAX_STREAMS_PER_SESSION; i += 1) streams.push(await open(session));
    }
    // A fresh session, with no stream of its own, is refused: the account holds its share.
    expect(await refusal(await loginUser(app.t, user.email))).toEqual({
      code: 'TOO_MANY_STREAMS',
      message: `This account already has ${MAX_STREAMS_PER_USER} open event streams: close one first.`,
    });
    // Another user is not.
    const other = await open(await registerUser(app.t));
    for (const stream of [...streams, other]) await stream.close();
    await expectNoStreams();
  });

  it('bounds the streams of the instance (VIEWER_EVENTS_MAX_STREAMS): one more is TOO_MANY_STREAMS', async () => {
    const streams: ViewerEventStream[] = [];
    while (streams.length < INSTANCE_CAP) {
      const user = await registerUser(app.t);
      for (let i = 0; i < MAX_STREAMS_PER_SESSION && streams.length < INSTANCE_CAP; i += 1) streams.push(await open(user));
    }
    expect(await refusal(await registerUser(app.t))).toEqual({
      code: 'TOO_MANY_STREAMS',
      message: 'This server holds as many event streams as it may: try again later.',
    });
    await streams.pop()!.close();
    await vi.waitFor(() => expect(app.t.services.viewerEvents.openStreams()).toBe(INSTANCE_CAP - 1), ARRIVES);
    streams.push(await open(await registerUser(app.t)));
    for (const stream of streams) await stream.close();
    await expectNoStreams();
  });

  it('ends the stream of a client that stops reading once its unread events pile up, and forgets them', async () => {
    const user = await registerUser(app.t);
    // A client that sends the subscription and never reads the answer: the server's writes fill
    // the socket's buffers, then the stream's queue.
    const request = http.request(`${app.server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${user.accessToken}` },
    });
    const response = new Promise<http.IncomingMessage>((resolve, reject) => request.on('response', resolve).on('error', reject));
    request.end(JSON.stringify({ query: VIEWER_EVENTS }));
    const answer = await response; // not read: paused, its socket stops reading once node's buffer is full
    await vi.waitFor(() => expect(app.t.services.viewerEvents.openStreams()).toBe(1), ARRIVES);
    // Far more events (SESSION_REVOKED of other sessions: none ends the stream) than the socket
    // buffers can hold (a few MB at most, some 30,000 events) plus the queue's bound.
    const burst = 100 * MAX_QUEUED_EVENTS;
    await app.t.database.db.execute(
      sql`select pg_notify(${CHANGE_CHANNEL}, ${`e:${user.userId}:SESSION_REVOKED:`} || gen_random_uuid()) from generate_series(1, ${burst})`,
    );
    await vi.waitFor(() => expect(app.t.services.viewerEvents.openStreams()).toBe(0), { timeout: 60_000, interval: 50 });
    // Read now: what the socket held, then the end, far short of the burst.
    let text = '';
    answer.setEncoding('utf8');
    for await (const chunk of answer) text += chunk;
    const delivered = text.split('event: next').length - 1;
    expect(text).toMatch(/event: complete\n/);
    expect(delivered).toBeGreaterThan(0);
    expect(delivered).toBeLessThan(burst);
  }, 120_000);
});
