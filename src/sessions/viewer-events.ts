import { EventEmitter, on } from 'node:events';
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

interface Stream {
  sessionId: string;
  emitter: EventEmitter;
}

const EVENT = 'event';
const END = 'end';

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
export function createViewerEvents(options: { feed: ChangeFeed; clock: Clock }) {
  const { feed, clock } = options;
  const byUser = new Map<string, Set<Stream>>();

  const endAll = () => {
    for (const streams of byUser.values()) for (const stream of streams) stream.emitter.emit(END);
  };
  feed.subscribe({
    apply(change) {
      if (change.kind !== 'viewer_event') return;
      const event: ViewerEvent = { type: change.type, at: clock.now(), sessionId: change.sessionId };
      for (const stream of byUser.get(change.userId) ?? []) {
        stream.emitter.emit(EVENT, event);
        if (endsStream(event, stream.sessionId)) stream.emitter.emit(END);
      }
    },
    clear: endAll,
  });

  return {
    /**
     * Opens a stream of the events of `userId`, listening at once (before the first read): a
     * check made after this call cannot miss an event. Ends after an event that ends the
     * session, at `endsAt` (when the access token it was opened with expires, or its session
     * does: it was authorized until then, no longer), on `endAll`, or when the reader returns;
     * forgotten then.
     */
    open({ userId, sessionId, endsAt }: { userId: string; sessionId: string; endsAt: Date }): AsyncIterableIterator<[ViewerEvent]> {
      const streams = byUser.get(userId) ?? new Set<Stream>();
      const held = [...streams].filter((stream) => stream.sessionId === sessionId).length;
      if (held >= MAX_STREAMS_PER_SESSION) throw new TooManyStreamsError(MAX_STREAMS_PER_SESSION);
      const stream: Stream = { sessionId, emitter: new EventEmitter() };
      const cancelTimer = clock.setTimer(endsAt, () => stream.emitter.emit(END));
      stream.emitter.on('removeListener', (name) => {
        if (name !== EVENT) return;
        cancelTimer();
        streams.delete(stream);
        if (streams.size === 0 && byUser.get(userId) === streams) byUser.delete(userId);
      });
      const events = on(stream.emitter, EVENT, { close: [END] }) as AsyncIterableIterator<[ViewerEvent]>;
      streams.add(stream);
      byUser.set(userId, streams);
      return events;
    },
    /** Ends every open stream (shutdown). */
    endAll,
    /** How many streams are open, for tests of their clean-up. */
    openStreams: () => [...byUser.values()].reduce((sum, streams) => sum + streams.size, 0),
  };
}

export type ViewerEvents = ReturnType<typeof createViewerEvents>;
