/**
 * The real entry point, as an operator starts it: `npx tsx src/server.ts` in a child process,
 * with PGlite in a fresh DATA_DIR and no JWT_SECRET nor KEY_ENCRYPTION_KEY (so ES256 keys, and a
 * development key-encryption key, are generated).
 * How it is spawned and stopped: test/support/server-process.ts.
 */
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { inspect } from '../support/forge.js';
import { GOOD_PASSWORD, ME, REGISTER, uniqueEmail } from '../support/operations.js';
import {
  freePort,
  gql,
  killGroup,
  killSpawnedServers,
  logRecords,
  serverPid,
  spawnServer,
  stopServer as stopWithin,
  waitUntilHealthy,
  within,
  type Started,
} from '../support/server-process.js';

const TEST_TIMEOUT = 90_000;
const SHUTDOWN_TIMEOUT_MS = 10_000;

/** Whether a TCP connection to host:port is accepted. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(2000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

const dataDirs: string[] = [];

function newDataDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'authgraph-start-'));
  dataDirs.push(dir);
  return dir;
}

/** Sends SIGTERM to the server process and waits (bounded) for `npx` to exit. */
const stopServer = (server: Started) => stopWithin(server, SHUTDOWN_TIMEOUT_MS);

afterAll(async () => {
  killSpawnedServers();
  await delay(200);
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

const KEK_WARNING = /KEY_ENCRYPTION_KEY is not set/;

describe('npx tsx src/server.ts (PGlite in DATA_DIR, no JWT_SECRET, no KEY_ENCRYPTION_KEY)', () => {
  const dataDir = newDataDir();
  // Kept from the first run for the second.
  let first: { accessToken: string; userId: string; email: string } | undefined;

  it(
    'starts on HOST:PORT, migrates, signs ES256 under a generated 0600 dev key-encryption key, serves GraphiQL, logs no credentials, and stops on SIGTERM with exit code 0',
    async () => {
      const port = await freePort();
      const server = spawnServer(
        { DATA_DIR: dataDir, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', RATE_LIMITS: 'off' },
        port,
      );
      try {
        await waitUntilHealthy(server);

        // Listens on exactly HOST:PORT: the log says so, and another loopback address of the
        // same port (which 0.0.0.0 would cover) is refused.
        // The log line and the health answer come over different pipes: either may be read first.
        await vi.waitFor(() => expect(logRecords(server).find((record) => record.msg === 'authgraph is listening')).toBeDefined(), {
          timeout: 30_000,
        });
        const listening = logRecords(server).find((record) => record.msg === 'authgraph is listening');
        expect(listening).toMatchObject({ database: 'pglite', url: `http://127.0.0.1:${port}/graphql` });
        expect(await accepts('127.0.0.1', port)).toBe(true);
        expect(await accepts('127.0.0.2', port)).toBe(false);

        expect((await fetch(`${server.base}/ready`)).status).toBe(200);

        // Migrations ran: register and me work.
        const email = uniqueEmail('start');
        const registered = await gql(server.base, REGISTER, { input: { email, password: GOOD_PASSWORD } });
        expect(registered.status).toBe(200);
        const payload = registered.body.data?.register;
        expect(payload?.__typename, JSON.stringify(registered.body)).toBe('AuthPayload');
        expect(inspect(payload.accessToken).header.alg).toBe('ES256');
        const me = await gql(server.base, ME, {}, payload.accessToken);
        expect(me.body.errors, JSON.stringify(me.body)).toBeUndefined();
        expect(me.body.data.me).toMatchObject({ id: payload.user.id, email, active: true });
        first = { accessToken: payload.accessToken, userId: payload.user.id, email };

        // The development key-encryption key: generated into DATA_DIR, owner-only, announced once.
        const secretFile = path.join(dataDir, 'key-encryption-key');
        expect(existsSync(secretFile)).toBe(true);
        expect(statSync(secretFile).mode & 0o777).toBe(0o600);
        expect(server.lines().filter((line) => KEK_WARNING.test(line))).toHaveLength(1);
        expect(server.stderr()).toContain('RATE_LIMITS=off');

        const graphiql = await fetch(`${server.base}/graphql`, { headers: { accept: 'text/html' } });
        expect(graphiql.status).toBe(200);
        expect(graphiql.headers.get('content-type')).toContain('text/html');
        expect(await graphiql.text()).toMatch(/graphiql/i);

        expect(existsSync(path.join(dataDir, 'authgraph.lock'))).toBe(true);
        const { exit, ms } = await stopServer(server);
        expect(exit).toEqual({ code: 0, signal: null });
        expect(ms).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
        expect(existsSync(path.join(dataDir, 'authgraph.lock'))).toBe(false);

        // Checked on the whole output, shutdown included.
        const leaks = server
          .lines()
          .filter(
            (line) =>
              line.includes(payload.accessToken) || line.includes(payload.refreshToken) || line.includes(GOOD_PASSWORD),
          );
        expect(leaks).toEqual([]);
      } finally {
        killGroup(server.child);
      }
    },
    TEST_TIMEOUT,
  );

  it(
    'keeps the generated key-encryption key and the keys across a restart on the same DATA_DIR: the first run\'s token still works',
    async () => {
      expect(first, 'the first run did not complete').toBeDefined();
      const port = await freePort();
      const server = spawnServer(
        { DATA_DIR: dataDir, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', RATE_LIMITS: 'off' },
        port,
      );
      try {
        await waitUntilHealthy(server);
        const me = await gql(server.base, ME, {}, first!.accessToken);
        expect(me.body.errors, JSON.stringify(me.body)).toBeUndefined();
        expect(me.body.data.me).toMatchObject({ id: first!.userId, email: first!.email });
        // The key-encryption key was read, not generated again: no warning this time.
        expect(server.lines().filter((line) => KEK_WARNING.test(line))).toEqual([]);
        const { exit } = await stopServer(server);
        expect(exit).toEqual({ code: 0, signal: null });
        expect(existsSync(path.join(dataDir, 'authgraph.lock'))).toBe(false);
      } finally {
        killGroup(server.child);
      }
    },
    TEST_TIMEOUT,
  );
});

describe('npm start, stopped the way a supervisor stops it', () => {
  it(
    'passes a SIGTERM sent to npm on to the server, which shuts down cleanly: npm exits 0 and no process is left behind',
    async () => {
      const dataDir = newDataDir();
      const port = await freePort();
      const server = spawnServer({ DATA_DIR: dataDir, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info' }, port, ['npm', 'start']);
      try {
        await waitUntilHealthy(server);
        const pid = await serverPid(server);
        // docker stop and systemd signal the process they started: npm, not the server.
        process.kill(server.child.pid!, 'SIGTERM');
        const exit = await within(server.exited, SHUTDOWN_TIMEOUT_MS);
        expect(exit, `npm did not exit within ${SHUTDOWN_TIMEOUT_MS} ms\n${server.stdout()}`).toEqual({ code: 0, signal: null });
        expect(logRecords(server).map((record) => record.msg)).toContain('shutting down');
        expect(() => process.kill(pid, 0), 'the server process is still running').toThrow();
        expect(existsSync(path.join(dataDir, 'authgraph.lock'))).toBe(false);
      } finally {
        killGroup(server.child);
      }
    },
    TEST_TIMEOUT,
  );
});

describe('npx tsx src/server.ts with NODE_ENV=production', () => {
  it(
    'refuses to start without KEY_ENCRYPTION_KEY: exit code 1, a message naming it, no stack trace, no database work',
    async () => {
      const dataDir = newDataDir();
      const port = await freePort();
      const started = Date.now();
      const server = spawnServer(
        { NODE_ENV: 'production', DATA_DIR: dataDir, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info' },
        port,
      );
      try {
        const exit = await within(server.exited, 40_000);
        expect(exit, `still running\n${server.stdout()}\n${server.stderr()}`).not.toBeNull();
        expect(exit).toEqual({ code: 1, signal: null });
        expect(Date.now() - started).toBeLessThan(40_000);
        expect(server.stderr()).toContain('KEY_ENCRYPTION_KEY');
        expect(server.stderr()).toMatch(/^authgraph cannot start: /m);
        expect(server.stderr()).not.toMatch(/^\s+at /m);
        // It never listened, and generated no development key and took no lock.
        expect(await accepts('127.0.0.1', port)).toBe(false);
        expect(existsSync(path.join(dataDir, 'key-encryption-key'))).toBe(false);
        expect(existsSync(path.join(dataDir, 'pglite'))).toBe(false);
        expect(existsSync(path.join(dataDir, 'authgraph.lock'))).toBe(false);
      } finally {
        killGroup(server.child);
      }
    },
    TEST_TIMEOUT,
  );
});
