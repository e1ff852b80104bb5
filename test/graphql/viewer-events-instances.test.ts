/**
 * Issue 13: viewerEvents across instances. Two app instances on one database (on PostgreSQL each
 * with its own pool and LISTEN connection; on PGlite sharing the one handle): a session revoked
 * on B reaches a subscriber on A, whose stream then ends. The wait is generous: it asserts that
 * the event arrives, not how fast (the bench measures propagation).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { REVOKE_SESSION, sessionIdOf } from '../support/account.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { listen, type Listening } from '../support/listen.js';
import { loginUser, registerUser } from '../support/operations.js';
import { openSharedDatabase, type SharedDatabase } from '../support/shared-database.js';
import { ARRIVES, expectEnded, nextEvent, openViewerEvents } from '../support/viewer-events.js';

let shared: SharedDatabase;
let a: TestApp;
let b: TestApp;
let serverA: Listening;
beforeAll(async () => {
  shared = await openSharedDatabase();
  a = await createTestApp({}, shared.first);
  b = await createTestApp({}, shared.second);
  for (const app of [a, b]) await vi.waitFor(() => expect(app.services.changes.live()).toBe(true), { timeout: 30_000, interval: 50 });
  serverA = await listen(a.app);
});
afterAll(async () => {
  await serverA?.close();
  await b?.close();
  await a?.close();
  await shared?.close();
});

describe('viewerEvents across instances', () => {
  it('delivers to a subscriber on A the SESSION_REVOKED of a revokeSession on B, then ends its stream', async () => {
    const user = await registerUser(a);
    const device = await loginUser(b, user.email);
    const stream = await openViewerEvents(a, serverA.url, user.accessToken);
    const sessionId = sessionIdOf(user.accessToken);
    const res = await b.gql(REVOKE_SESSION, { id: sessionId }, { token: device.accessToken });
    expect(res.data?.revokeSession).toBe(true);
    expect(await nextEvent(stream)).toMatchObject({ type: 'SESSION_REVOKED', sessionId });
    await expectEnded(stream);
    await vi.waitFor(() => expect(a.services.viewerEvents.openStreams()).toBe(0), ARRIVES);
  });
});
