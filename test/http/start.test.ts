/**
 * The real entry point, as an operator starts it: `npx tsx src/server.ts` in a child process,
 * with PGlite in a fresh DATA_DIR and no JWT_SECRET (so a development secret is generated).
 *
 * The server is stopped by sending SIGTERM to the server process itself (its pid is in every
 * log line). Signalling `npx` does not reach it: npm dies of the signal at once (exit by
 * SIGTERM, no exit code) and leaves tsx and the server running as orphans. The exit code of
 * `npx` is the server's, passed up through tsx and npm.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../support/cli.js';
import { inspect } from '../support/forge.js';
import { GOOD_PASSWORD, ME, REGISTER, uniqueEmail } from '../support/operations.js';

const TEST_TIMEOUT = 90_000;
const STARTUP_TIMEOUT_MS = 40_000;
const SHUTDOWN_TIMEOUT_MS = 10_000;

/** A port nothing listens on right now: bound to 0, read, released. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

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

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface Started {
  child: ChildProcess;
  port: number;
  base: string;
  stdout(): string;
  stderr(): string;
  /** Every line written to stdout or stderr so far (npm's own warnings left out). */
  lines(): string[];
  /** Settles when `npx` exits. */
  exited: Promise<Exit>;
  hasExited(): boolean;
}

const children: ChildProcess[] = [];
const dataDirs: string[] = [];

function newDataDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'authgraph-start-'));
  dataDirs.push(dir);
  return dir;
}

/**
 * Spawns `npx tsx src/server.ts` (or `command`) in the project root, in a process group of its own (so that
 * clean-up can reach tsx and the server too). JWT_SECRET and DATABASE_URL are removed from
 * the inherited environment; `env` adds to it (`undefined` removes).
 */
function spawnServer(env: Record<string, string | undefined>, port: number, command = ['npx', 'tsx', 'src/server.ts']): Started {
  const childEnv: Record<string, string | undefined> = { ...process.env };
  delete childEnv.JWT_SECRET;
  delete childEnv.DATABASE_URL;
  delete childEnv.NODE_ENV; // vitest sets NODE_ENV=test
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete childEnv[key];
    else childEnv[key] = value;
  }
  const child = spawn(command[0]!, command.slice(1), {
    cwd: PROJECT_ROOT,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  let done = false;
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
  });
  const ownLines = (text: string) => text.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('npm warn'));
  return {
    child,
    port,
    base: `http://127.0.0.1:${port}`,
    stdout: () => stdout,
    stderr: () => ownLines(stderr).join('\n'),
    lines: () => [...ownLines(stdout), ...ownLines(stderr)],
    exited,
    hasExited: () => done,
  };
}

/** Polls GET /health until it answers 200; fails with the process output when it never does. */
async function waitUntilHealthy(server: Started): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (server.hasExited()) break;
    try {
      const response = await fetch(`${server.base}/health`, { signal: AbortSignal.timeout(2000) });
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    await delay(200);
  }
  throw new Error(
    `server did not answer /health on ${server.base} (exited: ${server.hasExited()})\n` +
      `stdout:\n${server.stdout()}\nstderr:\n${server.stderr()}`,
  );
}

/** The parsed JSON log lines of stdout. */
function logRecords(server: Started): Record<string, any>[] {
  return server
    .stdout()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line));
}

/** The pid of the server process itself, from its "listening" log line. */
function serverPid(server: Started): number {
  const listening = logRecords(server).find((record) => record.msg === 'authgraph is listening');
  expect(listening, server.stdout()).toBeDefined();
  expect(listening!.pid).toEqual(expect.any(Number));
  return listening!.pid as number;
}

/** Sends SIGTERM to the server process and waits (bounded) for `npx` to exit. */
async function stopServer(server: Started): Promise<{ exit: Exit; ms: number }> {
  const started = Date.now();
  process.kill(serverPid(server), 'SIGTERM');
  const exit = await within(server.exited, SHUTDOWN_TIMEOUT_MS);
  if (!exit) throw new Error(`server did not exit within ${SHUTDOWN_TIMEOUT_MS} ms of SIGTERM\n${server.stdout()}\n${server.stderr()}`);
  return { exit, ms: Date.now() - started };
}

/** POSTs one GraphQL operation over HTTP. */
async function gql(base: string, query: string, variables: Record<string, unknown> = {}, token?: string) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${base}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

/**
 * SIGKILLs the process group of a spawned `npx` (npm, tsx, the server), whether or not npx
 * itself is still there: an npx killed by a signal leaves tsx and the server behind in it.
 */
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // the group is gone
  }
}

/** The promise's value, or null when it has not settled within `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  const timeout = new AbortController();
  try {
    return await Promise.race([promise, delay(ms, null, { signal: timeout.signal })]);
  } finally {
    timeout.abort();
  }
}

afterAll(async () => {
  for (const child of children) killGroup(child);
  await delay(200);
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

const JWT_SECRET_WARNING = /JWT_SECRET/;

describe('npx tsx src/server.ts (PGlite in DATA_DIR, no JWT_SECRET)', () => {
  const dataDir = newDataDir();
  // Kept from the first run for the second.
  let first: { accessToken: string; userId: string; email: string } | undefined;

  it(
    'starts on HOST:PORT, migrates, generates a 0600 dev secret, serves GraphiQL, logs no credentials, and stops on SIGTERM with exit code 0',
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
        expect(inspect(payload.accessToken).header.alg).toBe('HS256');
        const me = await gql(server.base, ME, {}, payload.accessToken);
        expect(me.body.errors, JSON.stringify(me.body)).toBeUndefined();
        expect(me.body.data.me).toMatchObject({ id: payload.user.id, email, active: true });
        first = { accessToken: payload.accessToken, userId: payload.user.id, email };

        // The development secret: generated into DATA_DIR, owner-only, announced once.
        const secretFile = path.join(dataDir, 'jwt-secret');
        expect(existsSync(secretFile)).toBe(true);
        expect(statSync(secretFile).mode & 0o777).toBe(0o600);
        expect(server.lines().filter((line) => JWT_SECRET_WARNING.test(line))).toHaveLength(1);
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
    'keeps the generated secret across a restart on the same DATA_DIR: the first run\'s token still works',
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
        // The secret was read, not generated again: no warning this time.
        expect(server.lines().filter((line) => JWT_SECRET_WARNING.test(line))).toEqual([]);
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
        const pid = serverPid(server);
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
    'refuses to start without JWT_SECRET: exit code 1, a message naming JWT_SECRET, no stack trace',
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
        expect(server.stderr()).toContain('JWT_SECRET');
        expect(server.stderr()).toMatch(/^authgraph cannot start: /m);
        expect(server.stderr()).not.toMatch(/^\s+at /m);
        // It never listened, and generated no development secret and took no lock.
        expect(await accepts('127.0.0.1', port)).toBe(false);
        expect(existsSync(path.join(dataDir, 'jwt-secret'))).toBe(false);
        expect(existsSync(path.join(dataDir, 'authgraph.lock'))).toBe(false);
      } finally {
        killGroup(server.child);
      }
    },
    TEST_TIMEOUT,
  );
});
