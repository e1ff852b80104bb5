/**
 * The first minutes of a new user, on the real entry point in a child process: the line that
 * says where the server is, a port already taken, Ctrl-C (SIGINT, often twice: from the terminal
 * and forwarded by npm). Each stop must close the database and remove PGlite's lock.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import {
  freePort,
  killGroup,
  killSpawnedServers,
  logRecords,
  serverPid,
  spawnServer,
  waitUntilHealthy,
  within,
  type Started,
} from '../support/server-process.js';

const TEST_TIMEOUT = 90_000;
const EXIT_BOUND_MS = 60_000;
const JWT_SECRET = 'first-run-test-secret-first-run-test-secret-01';

const dataDirs: string[] = [];
afterEach(() => killSpawnedServers());
afterAll(async () => {
  await delay(200);
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

/** A server on PGlite in a fresh DATA_DIR; `command` defaults to `npx tsx src/server.ts`. */
async function start(env: Record<string, string> = {}, command?: string[]) {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'authgraph-first-run-'));
  dataDirs.push(dataDir);
  const port = await freePort();
  const server = spawnServer({ DATA_DIR: dataDir, JWT_SECRET, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...env }, port, command);
  const lock = path.join(dataDir, 'authgraph.lock');
  return { server, port, dataDir, lock };
}

/** Waits (bounded) for the spawned command to exit. */
async function exitOf(server: Started) {
  const exit = await within(server.exited, EXIT_BOUND_MS);
  expect(exit, `still running\n${server.stdout()}\n${server.stderr()}`).not.toBeNull();
  return exit!;
}

describe('the start-up line', () => {
  it(
    'says where GraphQL and GraphiQL are, in one line on stderr, besides the JSON logs on stdout',
    async () => {
      const { server, port } = await start();
      try {
        await waitUntilHealthy(server);
        await serverPid(server); // the JSON "listening" line is out
        const human = `authgraph listening on http://127.0.0.1:${port}/graphql — GraphiQL in your browser`;
        // stderr is another pipe, read on its own schedule: waited for.
        await vi.waitFor(() => expect(server.stderr().split('\n')).toContain(human), { timeout: 10_000, interval: 50 });
        expect(server.stderr().split('\n').filter((line) => line.startsWith('authgraph listening'))).toHaveLength(1);
        // stdout stays JSON, line by line, for log shippers.
        const stdout = server.stdout().split('\n').filter((line) => line.trim() !== '');
        expect(stdout.filter((line) => !line.startsWith('{'))).toEqual([]);
      } finally {
        killGroup(server.child);
      }
    },
    TEST_TIMEOUT,
  );

  it(
    'names localhost for HOST=0.0.0.0, and leaves GraphiQL out when it is off',
    async () => {
      const { server, port } = await start({ HOST: '0.0.0.0', GRAPHIQL: 'false' });
      try {
        await waitUntilHealthy(server);
        await serverPid(server);
        await vi.waitFor(
          () => {
            const lines = server.stderr().split('\n').filter((line) => line.startsWith('authgraph listening'));
            expect(lines).toEqual([`authgraph listening on http://localhost:${port}/graphql`]);
          },
          { timeout: 10_000, interval: 50 },
        );
      } finally {
        killGroup(server.child);
      }
    },
    TEST_TIMEOUT,
  );
});

describe('listen errors', () => {
  it(
    'a busy port: exit code 1, "authgraph cannot start: … EADDRINUSE …", no stack trace, the lock released',
    async () => {
      const squatter = net.createServer();
      await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
      const busy = (squatter.address() as net.AddressInfo).port;
      try {
        const { server, lock } = await start({ PORT: String(busy) });
        const exit = await exitOf(server);
        expect(exit).toEqual({ code: 1, signal: null });
        const stderr = server.stderr();
        expect(stderr.trim().split('\n').at(-1)).toBe(
          `authgraph cannot start: 127.0.0.1:${busy} is already in use (EADDRINUSE): stop the process listening there, or set PORT to a free port.`,
        );
        expect(stderr).not.toMatch(/^\s+at /m);
        expect(server.stdout()).not.toMatch(/^\s+at /m);
        expect(logRecords(server).map((record) => record.msg)).not.toContain('authgraph is listening');
        expect(existsSync(lock)).toBe(false);
      } finally {
        squatter.close();
      }
    },
    TEST_TIMEOUT,
  );

  it(
    'a HOST that is not this machine: exit code 1, "authgraph cannot start: … EADDRNOTAVAIL …", the lock released',
    async () => {
      // 192.0.2.1: TEST-NET-1 (RFC 5737), never assigned to a real interface.
      const { server, lock } = await start({ HOST: '192.0.2.1' });
      const exit = await exitOf(server);
      expect(exit).toEqual({ code: 1, signal: null });
      expect(server.stderr().trim().split('\n').at(-1)).toMatch(
        /^authgraph cannot start: HOST 192\.0\.2\.1 is not an address of this machine \(EADDRNOTAVAIL\)/,
      );
      expect(server.stderr()).not.toMatch(/^\s+at /m);
      expect(existsSync(lock)).toBe(false);
    },
    TEST_TIMEOUT,
  );
});

describe('stopping with signals, once or more', () => {
  it.each([
    ['SIGINT once', ['SIGINT']],
    ['SIGINT twice (Ctrl-C under npm)', ['SIGINT', 'SIGINT']],
    ['SIGTERM twice', ['SIGTERM', 'SIGTERM']],
    ['SIGINT, SIGTERM, SIGINT', ['SIGINT', 'SIGTERM', 'SIGINT']],
  ] as const)(
    '%s: drains, closes the database, removes the lock and exits 0',
    async (_label, signals) => {
      const { server, lock } = await start();
      await waitUntilHealthy(server);
      expect(existsSync(lock)).toBe(true);
      const pid = await serverPid(server);
      // Signals sent together would merge into one (the kernel keeps one pending per kind): each
      // later one is sent once the server has begun shutting down, as a second Ctrl-C arrives.
      process.kill(pid, signals[0]);
      await vi.waitFor(() => expect(logRecords(server).map((record) => record.msg)).toContain('shutting down'), {
        timeout: 10_000,
        interval: 5,
      });
      for (const signal of signals.slice(1)) process.kill(pid, signal);
      const exit = await exitOf(server);
      expect(exit, server.stdout()).toEqual({ code: 0, signal: null });
      expect(existsSync(lock)).toBe(false);
      const messages = logRecords(server).map((record) => record.msg);
      expect(messages).toContain('shutting down');
      expect(messages).toContain('shut down');
    },
    TEST_TIMEOUT,
  );

  it(
    'a second signal while a request is in flight cuts it, and still closes the database and removes the lock (exit 1)',
    async () => {
      const { server, port, lock } = await start();
      await waitUntilHealthy(server);
      const pid = await serverPid(server);
      // A request the server has begun (its headers are in) and cannot finish: its body never comes.
      const socket = net.connect({ host: '127.0.0.1', port });
      await new Promise((resolve) => socket.once('connect', resolve));
      const closed = new Promise((resolve) => socket.once('close', resolve));
      socket.on('error', () => {});
      socket.write('POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"query"');
      await delay(300);
      process.kill(pid, 'SIGINT');
      await vi.waitFor(() => expect(logRecords(server).map((record) => record.msg)).toContain('shutting down'), {
        timeout: 10_000,
        interval: 5,
      });
      expect(server.hasExited()).toBe(false); // draining: the request holds it
      process.kill(pid, 'SIGINT');
      const exit = await exitOf(server);
      await closed;
      expect(exit, server.stdout()).toEqual({ code: 1, signal: null });
      expect(existsSync(lock)).toBe(false);
      expect(logRecords(server).find((record) => record.msg === 'shut down')).toMatchObject({ cutRequests: 1 });
    },
    TEST_TIMEOUT,
  );

  it(
    'Ctrl-C on `npm start` (SIGINT to the whole process group): the server shuts down cleanly and npm exits 0',
    async () => {
      const { server, lock } = await start({}, ['npm', 'start']);
      await waitUntilHealthy(server);
      const pid = await serverPid(server);
      // A terminal's Ctrl-C signals every process of the foreground group: npm, sh, node.
      process.kill(-server.child.pid!, 'SIGINT');
      const exit = await exitOf(server);
      expect(() => process.kill(pid, 0), 'the server process is still running').toThrow();
      expect(existsSync(lock)).toBe(false);
      expect(exit, server.stderr()).toEqual({ code: 0, signal: null });
      expect(logRecords(server).map((record) => record.msg)).toContain('shut down');
    },
    TEST_TIMEOUT,
  );
});
