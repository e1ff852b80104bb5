/**
 * A TCP proxy in front of PostgreSQL that a test can break the way networks and failovers
 * break: cut every connection (and refuse new ones), or hold every byte (a silent partition:
 * connections are accepted, nothing is answered), then restore.
 */
import net from 'node:net';

export interface TcpProxy {
  port: number;
  /** How many connections are open through the proxy. */
  connections(): number;
  /** Resets every connection and refuses new ones (the database host is gone). */
  cut(): Promise<void>;
  /**
   * Accepts connections (listening again after a cut) but forwards nothing, either way: bytes
   * are held, as a partitioned network holds them, and delivered on restore() to whichever
   * side is still there.
   */
  blackhole(): Promise<void>;
  /**
   * The connections open now go silent for good (their bytes are dropped, nothing closes them);
   * new ones are forwarded. What a failover that moves the database's address looks like to
   * the connections of the old server.
   */
  strand(): void;
  /** Listens again (after a cut) and forwards again, held bytes first (after a blackhole). */
  restore(): Promise<void>;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket | null;
  toUpstream: Buffer[];
  toClient: Buffer[];
  stranded: boolean;
}

/** Starts a proxy on a free loopback port that forwards to `target`. */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let holding = false;
  const pairs = new Set<Pair>();

  const connectUpstream = (pair: Pair) => {
    const upstream = net.connect(target.port, target.host);
    pair.upstream = upstream;
    upstream.on('data', (chunk) => {
      if (pair.stranded) return;
      if (holding) pair.toClient.push(chunk);
      else pair.client.write(chunk);
    });
    upstream.on('error', () => pair.client.destroy());
    upstream.on('close', () => pair.client.destroy());
    for (const chunk of pair.toUpstream.splice(0)) upstream.write(chunk);
  };

  const server = net.createServer((client) => {
    const pair: Pair = { client, upstream: null, toUpstream: [], toClient: [], stranded: false };
    pairs.add(pair);
    client.on('data', (chunk) => {
      if (pair.stranded) return;
      if (holding || !pair.upstream) pair.toUpstream.push(chunk);
      else pair.upstream.write(chunk);
    });
    client.on('error', () => pair.upstream?.destroy());
    client.on('close', () => {
      pair.upstream?.destroy();
      pairs.delete(pair);
    });
    if (!holding) connectUpstream(pair);
  });

  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stopListening = () => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));

  await listen(0);
  const { port } = server.address() as net.AddressInfo;

  const destroyAll = () => {
    for (const pair of pairs) {
      pair.client.resetAndDestroy();
      pair.upstream?.destroy();
    }
    pairs.clear();
  };

  return {
    port,
    connections: () => pairs.size,
    async cut() {
      holding = false;
      const closing = stopListening();
      destroyAll();
      await closing;
    },
    async blackhole() {
      holding = true;
      if (!server.listening) await listen(port);
    },
    strand() {
      for (const pair of pairs) pair.stranded = true;
    },
    async restore() {
      holding = false;
      if (!server.listening) await listen(port);
      for (const pair of pairs) {
        if (!pair.upstream) connectUpstream(pair);
        else for (const chunk of pair.toUpstream.splice(0)) pair.upstream.write(chunk);
        for (const chunk of pair.toClient.splice(0)) pair.client.write(chunk);
      }
    },
    async close() {
      const closing = stopListening();
      destroyAll();
      await closing;
    },
  };
}
