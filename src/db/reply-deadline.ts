import net from 'node:net';

/** The parts of postgres.js's parsed options that its `socket` option is called with. */
export interface SocketTarget {
  host: string[];
  port: number[];
  path: string | false;
}

/** Why a database socket was destroyed: it sent a request and received nothing for too long. */
export class NoReplyError extends Error {
  override name = 'NoReplyError';
  readonly code = 'DATABASE_NO_REPLY';
}

/** Whether a chunk from the server ends with ReadyForQuery ('Z', length 5, status I/T/E): all it was asked is answered. */
function endsReady(chunk: Buffer): boolean {
  const at = chunk.length - 6;
  return at >= 0 && chunk[at] === 0x5a && chunk.readUInt32BE(at + 1) === 5;
}

/**
 * A socket factory for postgres.js (its `socket` option): connections to the database that are
 * destroyed once they have waited `replyTimeoutMs` for a reply without receiving a byte.
 *
 * Why: on a network partition, or a failover that leaves the old server's connections silent,
 * nothing ends a query already sent. No error, no close: TCP keepalive does not probe while
 * sent data is unacknowledged, and retransmissions go on for about 15 minutes. The query, and the
 * pooled connection under it, would wait that long. Destroying the socket makes postgres.js
 * reject what was in flight and open a new connection for what comes next.
 *
 * A connection waits from its first write after the server last said ReadyForQuery; any byte
 * received restarts the wait. An idle connection never waits. Limits: under TLS the traffic
 * passes below postgres.js's TLS socket, out of sight, so such connections are never dropped
 * (the request deadline still answers the client); and a query pipelined behind another whose
 * reply has come waits unseen until the connection's next write.
 */
export function socketWithReplyDeadline(replyTimeoutMs: number) {
  const checkEveryMs = Math.max(50, Math.min(1000, replyTimeoutMs / 5));
  let next = 0;
  return ({ host, port, path }: SocketTarget): net.Socket => {
    // Several hosts in the URL: take them in turn, as postgres.js does.
    const i = next++ % host.length;
    const socket = path ? net.connect(path) : net.connect(port[i]!, host[i]!);
    // postgres.js reads these for the TLS server name and its error messages.
    Object.assign(socket, { host: host[i], port: port[i] });

    let waitingSince: number | null = null;
    const write = socket.write;
    socket.write = function (this: net.Socket, ...args: Parameters<net.Socket['write']>) {
      waitingSince ??= Date.now();
      return write.apply(this, args);
    } as net.Socket['write'];
    socket.on('data', (chunk: Buffer) => {
      if (endsReady(chunk)) waitingSince = null;
      else if (waitingSince !== null) waitingSince = Date.now();
    });
    const check = setInterval(() => {
      if (waitingSince !== null && Date.now() - waitingSince >= replyTimeoutMs) {
        socket.destroy(new NoReplyError(`the database sent nothing for ${replyTimeoutMs} ms after a request`));
      }
    }, checkEveryMs);
    check.unref();
    socket.once('close', () => clearInterval(check));
    return socket;
  };
}
