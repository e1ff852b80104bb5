import type { Clock } from '../clock.js';
import type { ChangeFeed, ViewerEventType } from '../db/change-feed.js';
import { TooManyStreamsError } from '../errors.js';

/** One event of a viewerEvents stream. */
export interface ViewerEvent {
  type: ViewerEventType;
  /** When this instance received it (its clock). */
  at: Date;
  /** The revoked session (SESSION_REVOKED only). */
  sessionId: string | null;
}

/** Open streams one session may hold; one more is refused (TOO_MANY_STREAMS). */
export const MAX_STREAMS_PER_SESSION = 5;
/** Open streams one user may hold across sessions (four devices' worth of tabs). */
export const MAX_STREAMS_PER_USER = 20;
/**
 * Events a stream may hold that its client has not read yet. One more ends the stream: its
 * client, which was not reading, must subscribe again and query what it missed. Events are
 * shared between streams, so a full queue costs references, not copies.
 */
export const MAX_QUEUED_EVENTS = 1000;

/** One open stream: its events not yet read, and its reader when it waits for the next. */
interface Stream {
  userId: string;
  sessionId: string;
  queue: ViewerEvent[];
  waiting: ((result: IteratorResult<ViewerEvent, undefined>) => void) | null;
  ended: boolean;
  cancelTimer: () => void;
}

/** Whether a stream of `sessionId` ends after `event`: its session no longer works. */
function endsStream(event: ViewerEvent, sessionId: string): boolean {
  // A password change revokes every session, the changer's too (it continues on a new one).
  if (event.type === 'SESSION_REVOKED') return event.sessionId === sessionId;
  return event.type !== 'ROLES_CHANGED';
}

/**
 * The viewerEvents streams of this instance: one subscriber of the change feed fans each
 * account event out to the open streams of its user. When the feed's listener is lost (or
 * reloads) every stream ends: it cannot promise it saw every change, and a client that
 * subscribes again learns its state from a query.
 */
export function createViewerEvents(options: { feed: ChangeFeed; clock: Clock; maxStreams: number }) {
  const { feed, clock, maxStreams } = options;
  const byUser = new Map<string, Set<Stream>>();
  let open = 0;
  let closed = false;

  /** Forgets the stream; its reader gets what was queued (nothing, when `drop`), then the end. */
  const end = (stream: Stream, drop = false) => {
    if (stream.ended) return;
    stream.ended = true;
    stream.cancelTimer();
    if (drop) stream.queue = [];
    const streams = byUser.get(stream.userId);
    if (streams?.delete(stream)) {
      open -= 1;
      if (streams.size === 0) byUser.delete(stream.userId);
    }
    const waiting = stream.waiting;
    stream.waiting = null;
    waiting?.({ done: true, value: undefined });
  };

  const deliver = (stream: Stream, event: ViewerEvent) => {
    if (stream.waiting) {
      const waiting = stream.waiting;
      stream.waiting = null;
      waiting({ done: false, value: event });
    } else if (stream.queue.length >= MAX_QUEUED_EVENTS) {
      end(stream, true);
    } else {
      stream.queue.push(event);
    }
  };

  const endAll = () => {
    for (const streams of [...byUser.values()]) for (const stream of [...streams]) end(stream);
  };
  feed.subscribe({
    apply(change) {
      if (change.kind !== 'viewer_event') return;
      const event: ViewerEvent = { type: change.type, at: clock.now(), sessionId: change.sessionId };
      for (const stream of [...(byUser.get(change.userId) ?? [])]) {
        deliver(stream, event);
        if (endsStream(event, stream.sessionId)) end(stream);
      }
    },
    clear: endAll,
  });

  return {
    /**
     * Opens a stream of the events of `userId`, listening at once (before the first read): a
     * check made after this call cannot miss an event. Ends after an event that ends the
     * session, at `endsAt` (when the access token it was opened with expires, or its session
     * does: it was authorized until then, no longer), when its client stops reading for
     * MAX_QUEUED_EVENTS events, on `endAll`, or when the reader returns; forgotten then.
     */
    open({ userId, sessionId, endsAt }: { userId: string; sessionId: string; endsAt: Date }): AsyncIterableIterator<ViewerEvent> {
      if (closed) throw new Error('viewerEvents: opened after close');
      const streams = byUser.get(userId) ?? new Set<Stream>();
      const ofSession = [...streams].filter((stream) => stream.sessionId === sessionId).length;
      if (ofSession >= MAX_STREAMS_PER_SESSION) throw new TooManyStreamsError('session', MAX_STREAMS_PER_SESSION);
      if (streams.size >= MAX_STREAMS_PER_USER) throw new TooManyStreamsError('user', MAX_STREAMS_PER_USER);
      if (open >= maxStreams) throw new TooManyStreamsError('server', maxStreams);
      const stream: Stream = { userId, sessionId, queue: [], waiting: null, ended: false, cancelTimer: () => {} };
      streams.add(stream);
      byUser.set(userId, streams);
      open += 1;
      stream.cancelTimer = clock.setTimer(endsAt, () => end(stream));
      const iterator: AsyncIterableIterator<ViewerEvent> = {
        next() {
          const event = stream.queue.shift();
          if (event) return Promise.resolve({ done: false, value: event });
          if (stream.ended) return Promise.resolve({ done: true, value: undefined });
          return new Promise((resolve) => {
            stream.waiting = resolve;
          });
        },
        return() {
          end(stream, true);
          return Promise.resolve({ done: true, value: undefined });
        },
        [Symbol.asyncIterator]: () => iterator,
      };
      return iterator;
    },
    /** Whether a stream may open now: not once draining started (`close`). */
    accepting: () => !closed,
    /** Draining (shutdown): ends every open stream, and refuses every later one. */
    close() {
      closed = true;
      endAll();
    },
    /** How many streams are open, for tests of their clean-up and for metrics. */
    openStreams: () => open,
  };
}

export type ViewerEvents = ReturnType<typeof createViewerEvents>;
