import { isIP } from 'node:net';

/** Where a request came from: recorded on the sessions it creates, in audit events, and used as a rate-limit key. */
export interface RequestInfo {
  ip: string | null;
  userAgent: string | null;
}

/** The part of Node's server context authgraph reads: the socket the request came in on. */
export interface ServerContext {
  req?: { socket?: { remoteAddress?: string | undefined } };
}

// Stored as given but bounded: a user agent is a client-chosen header, not account data.
const MAX_USER_AGENT = 512;

/**
 * Who sent the request. The IP is the socket's peer; X-Forwarded-For is believed only with
 * TRUST_PROXY, and then only its last entry, the one our own proxy appended (earlier entries
 * are whatever the client chose to send).
 */
export function readRequestInfo(request: Request, server: ServerContext, trustProxy: boolean): RequestInfo {
  let ip = server.req?.socket?.remoteAddress ?? null;
  if (trustProxy) {
    const forwarded = request.headers.get('x-forwarded-for')?.split(',').at(-1)?.trim();
    if (forwarded && isIP(forwarded)) ip = forwarded;
  }
  const userAgent = request.headers.get('user-agent');
  return { ip, userAgent: userAgent ? userAgent.slice(0, MAX_USER_AGENT) : null };
}
