/** viewerEvents as a client reads it: graphql-sse's client (distinct connections mode) over a real port. */
import type { ExecutionResult } from 'graphql';
import { createClient } from 'graphql-sse';
import { expect, vi } from 'vitest';
import { createTestApp, type TestApp } from './app.js';
import { registerAdmin } from './authz.js';
import { listen, type Listening } from './listen.js';
import type { Session } from './operations.js';

export const VIEWER_EVENTS = 'subscription { viewerEvents { type at sessionId } }';

/** Generous: a stream opening or an event arriving is asserted, never timed. */
export const ARRIVES = { timeout: 10_000, interval: 20 };

export interface ViewerEventStream {
  /** The next result, or `done` once the server ended the stream. */
  next(): Promise<IteratorResult<ExecutionResult>>;
  /** Disconnects, as a client closing its tab does. */
  close(): Promise<void>;
}

/** A test app (configured by `env`) served on a real port, with an admin to make changes. */
export async function serveViewerEvents(env: Record<string, string> = {}): Promise<{
  t: TestApp;
  server: Listening;
  admin: Session;
  close(): Promise<void>;
}> {
  const t = await createTestApp(env);
  const server = await listen(t.app);
  const admin = await registerAdmin(t);
  return {
    t,
    server,
    admin,
    close: async () => {
      await server.close();
      await t.close();
    },
  };
}

/** Subscribes with graphql-sse's client at `url` (the server's origin); nothing is read yet. */
export function subscribeViewerEvents(url: string, token?: string): ViewerEventStream {
  const client = createClient({
    url: `${url}/graphql`,
    headers: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
  });
  const results = client.iterate<Record<string, unknown>>({ query: VIEWER_EVENTS });
  return {
    next: () => results.next() as Promise<IteratorResult<ExecutionResult>>,
    close: async () => {
      await results.return?.();
      client.dispose();
    },
  };
}

/**
 * Subscribes and waits until `t` holds the stream open (its listener registered), so that what
 * the test changes next is certain to reach it. Returns the stream, its first result pending.
 */
export async function openViewerEvents(t: TestApp, url: string, token: string): Promise<ViewerEventStream> {
  const before = t.services.viewerEvents.openStreams();
  const stream = subscribeViewerEvents(url, token);
  let pending = stream.next();
  pending.catch(() => {});
  await vi.waitFor(() => expect(t.services.viewerEvents.openStreams()).toBe(before + 1), ARRIVES);
  return {
    next() {
      const current = pending;
      pending = current.then(() => stream.next());
      pending.catch(() => {});
      return current;
    },
    close: stream.close,
  };
}

/** The next event's data, checked to be an event (not an error, not the end). */
export async function nextEvent(stream: ViewerEventStream): Promise<{ type: string; at: string; sessionId: string | null }> {
  const result = await stream.next();
  expect(result.done, 'the stream ended').toBe(false);
  expect(result.value.errors, JSON.stringify(result.value.errors)).toBeUndefined();
  return (result.value.data as { viewerEvents: { type: string; at: string; sessionId: string | null } }).viewerEvents;
}

/** Asserts that the server ended the stream (after whatever was read before). */
export async function expectEnded(stream: ViewerEventStream): Promise<void> {
  const result = await stream.next();
  expect(result, JSON.stringify(result.value)).toEqual({ done: true, value: undefined });
}
