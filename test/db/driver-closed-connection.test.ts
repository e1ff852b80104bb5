/**
 * postgres.js 3.4.9 as patched by scripts/patch-postgres.mjs: a query handed to a pooled
 * connection between its socket's 'error' and 'close' (one turn of the event loop, longer on a
 * busy one) is rejected, never resolved with the empty result of the reconnect's start-up. Before
 * the patch it resolved with no rows, so a user that exists read as missing.
 */
import net from 'node:net';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { postgresUrl } from '../support/database.js';

describe.runIf(postgresUrl)('the patched postgres.js driver', () => {
  it('rejects a query given to a connection whose socket failed and has not closed yet', async () => {
    let socket: net.Socket | undefined;
    const sql = postgres(postgresUrl!, {
      max: 1,
      fetch_types: false,
      onnotice: () => {},
      socket: ({ host, port }: { host: string[]; port: number[] }) => (socket = net.connect(port[0]!, host[0]!)),
    } as postgres.Options<Record<string, never>>);
    try {
      await sql`select 1`;
      let inWindow: Promise<unknown> | undefined;
      socket!.once('error', () => {
        // postgres.js's own 'error' handler has run; 'close' comes later in this turn.
        inWindow = sql`select 42 as v`.then(
          (rows) => ({ resolved: rows.length }),
          (err: { code?: string }) => ({ rejected: err.code }),
        );
      });
      const failed = socket!;
      const closed = new Promise((resolve) => failed.once('close', resolve));
      failed.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
      await closed;
      // The pool opens the connection again for the next query; its start-up must not answer the first.
      expect(await sql`select 43 as v`).toEqual([{ v: 43 }]);
      expect(await inWindow).toEqual({ rejected: 'CONNECTION_CLOSED' });
    } finally {
      await sql.end({ timeout: 1 });
    }
  });
});
