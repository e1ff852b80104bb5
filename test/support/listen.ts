import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A running HTTP server on a free port of 127.0.0.1. */
export interface Listening {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Serves `handler` (an app, as server.ts does) on a free local port. */
export async function listen(handler: Parameters<typeof createServer>[1]): Promise<Listening> {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
