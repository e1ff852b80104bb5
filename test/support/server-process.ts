/**
 * The real server as an operator runs it: `npx tsx src/server.ts` (or `npm start`) in a child
 * process, on a free port, with its own environment.
 *
 * A server is stopped by signalling the server process itself (its pid is in every log line).
 * Signalling `npx` does not reach it: npm dies of the signal at once and leaves tsx and the
 * server running as orphans. The exit code of `npx` is the server's, passed up through tsx and npm.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { expect, vi } from 'vitest';
import { PROJECT_ROOT } from './cli.js';
export { freePort } from './free-port.js';

const STARTUP_TIMEOUT_MS = 40_000;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Started {
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


/**
 * Spawns `npx tsx src/server.ts` (or `command`) in the project root, in a process group of its
 * own (so that clean-up can reach tsx and the server too). JWT_SECRET, DATABASE_URL and NODE_ENV
 * are removed from the inherited environment; `env` adds to it (`undefined` removes).
 */
export function spawnServer(
  env: Record<string, string | undefined>,
  port: number,
  command = ['npx', 'tsx', 'src/server.ts'],
): Started {
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
export async function waitUntilHealthy(server: Started): Promise<void> {
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
export function logRecords(server: Started): Record<string, any>[] {
  return server
    .stdout()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line));
}

/**
 * The pid of the server process itself, from its "listening" log line. The line can reach us
 * after the server has answered /health (stdout is a pipe, read on its own schedule): it is
 * waited for.
 */
export async function serverPid(server: Started): Promise<number> {
  const listening = await vi.waitFor(
    () => {
      const record = logRecords(server).find((r) => r.msg === 'authgraph is listening');
      expect(record, server.stdout()).toBeDefined();
      return record!;
    },
    { timeout: 10_000, interval: 50 },
  );
  expect(listening.pid).toEqual(expect.any(Number));
  return listening.pid as number;
}

/** Sends SIGTERM to the server process and waits (at most `timeoutMs`) for `npx` to exit. */
export async function stopServer(server: Started, timeoutMs: number): Promise<{ exit: Exit; ms: number }> {
  const started = Date.now();
  process.kill(await serverPid(server), 'SIGTERM');
  const exit = await within(server.exited, timeoutMs);
  if (!exit) throw new Error(`server did not exit within ${timeoutMs} ms of SIGTERM\n${server.stdout()}\n${server.stderr()}`);
  return { exit, ms: Date.now() - started };
}

/** POSTs one GraphQL operation over HTTP and reads the JSON answer. */
export async function gql(
  base: string,
  query: string,
  variables: Record<string, unknown> = {},
  token?: string,
  signal?: AbortSignal,
) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${base}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query, variables }), signal });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

/**
 * SIGKILLs the process group of a spawned `npx` (npm, tsx, the server), whether or not npx
 * itself is still there: an npx killed by a signal leaves tsx and the server behind in it.
 */
export function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // the group is gone
  }
}

/** Kills every server this test file spawned; for afterAll, so a timed-out test leaks none. */
export function killSpawnedServers(): void {
  for (const child of children.splice(0)) killGroup(child);
}

/** The promise's value, or null when it has not settled within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  const timeout = new AbortController();
  try {
    return await Promise.race([promise, delay(ms, null, { signal: timeout.signal })]);
  } finally {
    timeout.abort();
  }
}
