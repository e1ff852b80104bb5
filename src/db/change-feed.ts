import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Logger } from '../logger.js';
import type { Database, DatabaseHandle, Listener } from './client.js';

/** The channel migration 0008's triggers announce changes on. */
export const CHANGE_CHANNEL = 'authgraph_changes';

/** What happened to an account, as migration 0009's triggers classify it (one per cause). */
export const VIEWER_EVENT_TYPES = [
  'SESSION_REVOKED',
  'SIGNED_OUT_EVERYWHERE',
  'PASSWORD_CHANGED',
  'ROLES_CHANGED',
  'ACCOUNT_DISABLED',
] as const;
export type ViewerEventType = (typeof VIEWER_EVENT_TYPES)[number];

/**
 * What a notification says changed: the receiver forgets what it held about it; or (viewer_event)
 * what happened to an account, for the viewerEvents streams of its user.
 */
export type Change =
  | { kind: 'user'; id: string }
  | { kind: 'session'; id: string }
  | { kind: 'revoked_token'; jti: string; expiresAt: Date }
  | { kind: 'role'; name: string }
  | { kind: 'viewer_event'; userId: string; type: ViewerEventType; sessionId: string | null };

const SYNC_PREFIX = 'sync:';

const isViewerEventType = (value: string | undefined): value is ViewerEventType =>
  (VIEWER_EVENT_TYPES as readonly (string | undefined)[]).includes(value);

/** `<user id>:<TYPE>`, or `<user id>:SESSION_REVOKED:<session id>`. */
function parseViewerEvent(rest: string): Change | null {
  const [userId, type, sessionId, ...more] = rest.split(':');
  if (!userId || !isViewerEventType(type) || more.length > 0) return null;
  if ((type === 'SESSION_REVOKED') !== Boolean(sessionId)) return null;
  return { kind: 'viewer_event', userId, type, sessionId: sessionId ?? null };
}

/** Reads a trigger's payload; null for anything else on the channel. */
export function parseChange(payload: string): Change | null {
  const kind = payload.slice(0, 2);
  const rest = payload.slice(2);
  if (!rest) return null;
  if (kind === 'u:') return { kind: 'user', id: rest };
  if (kind === 's:') return { kind: 'session', id: rest };
  if (kind === 'r:') return { kind: 'role', name: rest };
  if (kind === 'e:') return parseViewerEvent(rest);
  if (kind === 't:') {
    const colon = rest.indexOf(':');
    const seconds = Number(rest.slice(0, colon));
    if (colon < 1 || !Number.isSafeInteger(seconds) || colon === rest.length - 1) return null;
    return { kind: 'revoked_token', jti: rest.slice(colon + 1), expiresAt: new Date(seconds * 1000) };
  }
  return null;
}

/** Memory that the feed keeps exact: told every change, reset whenever a change may have been missed. */
export interface ChangeSubscriber {
  apply(change: Change): void;
  /** Forget everything (the listener is down, or about to reload). */
  clear(): void;
  /** Load what must be known up front (called after `clear`, once the listener is up). */
  reload?(): Promise<void>;
}

/** Whether memory may answer, and a counter that moves every time that trust is broken. */
export interface FeedState {
  /** True while the listener is up and every subscriber has reloaded since it came up. */
  live(): boolean;
  /** Changes when the listener is lost or comes back: a read that spans it must not be kept. */
  generation(): number;
}

export interface ChangeFeed extends FeedState {
  /** Before `start` only: every subscriber must see the first reload. */
  subscribe(subscriber: ChangeSubscriber): void;
  /** Starts listening; resolves once live, or once the first attempt to get there failed. */
  start(): Promise<void>;
  /**
   * Resolves once every change committed before the call has reached this instance (a
   * notification sent through the pool and received back on the listener: delivery is in
   * commit order). While not live, resolves when live again.
   */
  sync(): Promise<void>;
  /**
   * After a write: resolves once this instance has received every change committed so far, so
   * that its next request sees the write. Immediate while memory is not answering (nothing in it
   * to be stale) and on PGlite (delivered with the commit); bounded, so a silent listener cannot
   * hold a response (it is then reconnected).
   */
  settle(): Promise<void>;
  /** The database backend pid of this instance's LISTEN connection (PostgreSQL), else null. */
  listenerPid(): number | null;
  close(): Promise<void>;
}

/** How long to wait before trying a failed reload again. */
const RELOAD_RETRY_MS = 1000;
/** How long a write waits for its changes to come back before it gives up on the listener. */
const SETTLE_DEADLINE_MS = 5000;

/**
 * Follows the change channel: applies each change to the subscribers, and while the listener is
 * down (or reloading after it came back) reports not live, so that every check goes to the
 * database instead of to memory that may have missed a change.
 */
export function createChangeFeed(options: {
  database: Pick<DatabaseHandle, 'listen'>;
  db: Database;
  logger: Logger;
}): ChangeFeed {
  const { database, db, logger } = options;
  const subscribers: ChangeSubscriber[] = [];
  let state: 'down' | 'reloading' | 'live' = 'down';
  let generation = 0;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  /** Syncs waiting for their notification, and syncs to release when the feed is next live. */
  const awaitingEcho = new Map<string, () => void>();
  let awaitingLive: (() => void)[] = [];

  /**
   * Sends a marker through the pool; resolves to the wait for it on the listener (delivery is in
   * commit order), or rejects when it could not be sent.
   */
  const sendMarker = async (): Promise<{ echoed: Promise<void> }> => {
    const nonce = randomUUID();
    const echoed = new Promise<void>((resolve) => awaitingEcho.set(nonce, resolve));
    try {
      await db.execute(sql`select pg_notify(${CHANGE_CHANNEL}, ${SYNC_PREFIX + nonce})`);
    } catch (err) {
      awaitingEcho.delete(nonce);
      throw err;
    }
    return { echoed };
  };

  const clearAll = () => {
    for (const subscriber of subscribers) subscriber.clear();
  };

  const goLive = async (at: number) => {
    clearAll();
    try {
      for (const subscriber of subscribers) await subscriber.reload?.();
    } catch (err) {
      firstAttempt();
      if (generation !== at || closed) return;
      logger.warn({ err }, 'change feed: reload failed; answering from the database until it succeeds');
      retry = setTimeout(() => void goLive(at), RELOAD_RETRY_MS);
      retry.unref();
      return;
    }
    firstAttempt();
    if (generation !== at || closed) return;
    state = 'live';
    const released = awaitingLive;
    awaitingLive = [];
    for (const release of released) release();
  };

  const lost = () => {
    generation += 1;
    state = 'down';
    clearTimeout(retry);
    clearAll();
    // Their markers may be lost with the connection. Released now: memory answers nothing until
    // the next reload, which reads everything committed before it (sync waits for that).
    for (const release of awaitingEcho.values()) release();
    awaitingEcho.clear();
  };

  let listener: Listener | undefined;
  /** Settled by the first reload's outcome, so that an instance starts with its memory loaded. */
  let firstAttempt: () => void = () => {};
  const firstAttempted = new Promise<void>((resolve) => {
    firstAttempt = resolve;
  });
  const listen = () => database.listen(CHANGE_CHANNEL, {
    onMessage(payload) {
      if (payload.startsWith(SYNC_PREFIX)) {
        const nonce = payload.slice(SYNC_PREFIX.length);
        awaitingEcho.get(nonce)?.();
        awaitingEcho.delete(nonce);
        return;
      }
      const change = parseChange(payload);
      if (!change) return;
      for (const subscriber of subscribers) subscriber.apply(change);
    },
    onListening() {
      generation += 1;
      state = 'reloading';
      clearTimeout(retry);
      void goLive(generation);
    },
    onLost() {
      logger.warn('change feed: the listener was lost; answering from the database until it is back');
      lost();
    },
  });

  return {
    live: () => state === 'live',
    generation: () => generation,
    subscribe(subscriber) {
      if (listener) throw new Error('subscribe before the change feed starts');
      subscribers.push(subscriber);
    },
    async start() {
      listener = await listen();
      if (closed) await listener.stop();
      // Not listening (the database refused the connection): checks go to the database meanwhile.
      if (state === 'down') return;
      await firstAttempted;
    },
    async sync() {
      if (state === 'down') {
        await new Promise<void>((resolve) => awaitingLive.push(resolve));
        return;
      }
      await (await sendMarker()).echoed;
      if (state !== 'live') await new Promise<void>((resolve) => awaitingLive.push(resolve));
    },
    async settle() {
      // In one process (PGlite) the changes arrived with the commit; a marker would only queue
      // behind whatever holds the one connection.
      if (state !== 'live' || listener?.inProcess) return;
      let echoed: Promise<void>;
      try {
        ({ echoed } = await sendMarker());
      } catch (err) {
        // This write's changes may never be heard of: stop answering from memory until reloaded.
        logger.warn({ err }, 'change feed: could not send a marker after a write; reconnecting the listener');
        listener?.reconnect();
        return;
      }
      // Only the listener's side is timed: a slow pool is not a lost listener.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), SETTLE_DEADLINE_MS);
      });
      try {
        if ((await Promise.race([echoed, late])) === 'late' && state === 'live') {
          logger.warn('change feed: a change did not come back in time; reconnecting the listener');
          listener?.reconnect();
        }
      } finally {
        clearTimeout(timer);
      }
    },
    listenerPid: () => listener?.pid() ?? null,
    async close() {
      closed = true;
      generation += 1;
      state = 'down';
      clearTimeout(retry);
      await listener?.stop();
      for (const release of [...awaitingEcho.values(), ...awaitingLive]) release();
      awaitingEcho.clear();
      awaitingLive = [];
    },
  };
}
