/**
 * SIGTERM as a supervisor sends it (docker stop, systemd, a rolling deploy), to the real server
 * in a child process: requests in flight are finished, not dropped; the process exits 0 once
 * they are. SHUTDOWN_TIMEOUT bounds the wait, and a second signal ends it at once.
 */
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { onPostgres, postgresUrl } from '../support/database.js';
import { GOOD_PASSWORD, LOGIN, ME, REGISTER, uniqueEmail } from '../support/operations.js';
import { MY_SESSIONS } from '../support/account.js';
import { createScratchDatabase, type ScratchDatabase } from '../support/pg-scratch.js';
import {
  freePort,
  gql,
  killSpawnedServers,
  logRecords,
  serverPid,
  spawnServer,
  waitUntilHealthy,
  within,
  type Started,
} from '../support/server-process.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { VIEWER_EVENTS } from '../support/viewer-events.js';

const TEST_TIMEOUT = 120_000;
/** Far longer than a drain of a few logins takes, even on a slow machine. */
const EXIT_BOUND_MS = 30_000;
const JWT_SECRET = 'shutdown-test-secret-shutdown-test-secret-0123';

let scratch: ScratchDatabase | undefined;
let proxy: TcpProxy | undefined;
const dataDirs: string[] = [];

beforeAll(async () => {
  if (!onPostgres) return;
  scratch = await createScratchDatabase();
  const target = new URL(postgresUrl!);
  proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
});

// Also when a test failed or timed out: no server outlives its test, the network is whole again.
afterEach(async () => {
  killSpawnedServers();
  await proxy?.restore();
});

afterAll(async () => {
  await proxy?.close();
  await scratch?.drop();
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

/** A server on the suite's database: PGlite in a fresh DATA_DIR, or the scratch PostgreSQL database through the proxy. */
async function startServer(env: Record<string, string> = {}, dataDir = newDataDir()): Promise<Started> {
  const port = await freePort();
  const database = scratch && proxy ? { DATABASE_URL: `postgres://postgres@127.0.0.1:${proxy.port}/${scratch.name}` } : {};
  const server = spawnServer(
    { DATA_DIR: dataDir, JWT_SECRET, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', RATE_LIMITS: 'off', ...database, ...env },
    port,
  );
  await waitUntilHealthy(server);
  return server;
}

function newDataDir(): string {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'authgraph-shutdown-'));
  dataDirs.push(dataDir);
  return dataDir;
}

async function registerUser(server: Started): Promise<{ email: string; accessToken: string }> {
  const email = uniqueEmail('shutdown');
  const registered = await gql(server.base, REGISTER, { input: { email, password: GOOD_PASSWORD } });
  const payload = registered.body.data?.register;
  expect(payload?.__typename, JSON.stringify(registered.body)).toBe('AuthPayload');
  return { email, accessToken: payload.accessToken };
}

interface HeldRequest {
  /** Sends the rest of the body: the server can then answer. */
  release(): void;
  /** The HTTP answer (its body parsed when it is JSON), or why there was none. */
  answer: Promise<{ status?: number; body?: Record<string, any>; text?: string; failure?: string; at: number }>;
}

const parsedJson = (text: string): Record<string, any> | undefined => {
  try {
    return JSON.parse(text) as Record<string, any>;
  } catch {
    return undefined;
  }
};

/**
 * A GraphQL POST that the server has accepted and started on, but cannot finish until
 * release(): its connection was already in use (a /health answer came back on it), its headers
 * are sent, the last bytes of its body are held back.
 */
async function holdRequest(
  base: string,
  query: string,
  variables: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<HeldRequest> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  await new Promise<void>((resolve, reject) => {
    http.get(`${base}/health`, { agent }, (response) => response.resume().on('end', resolve)).on('error', reject);
  });
  const body = Buffer.from(JSON.stringify({ query, variables }));
  const request = http.request(`${base}/graphql`, {
    method: 'POST',
    agent,
    headers: { 'content-type': 'application/json', 'content-length': body.length, ...headers },
  });
  const answer = new Promise<Awaited<HeldRequest['answer']>>((resolve) => {
    request.on('response', (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode, body: parsedJson(text), text, at: Date.now() }));
      response.on('error', (err) => resolve({ failure: String(err), at: Date.now() }));
    });
    request.on('error', (err) => resolve({ failure: String(err), at: Date.now() }));
  });
  void answer.finally(() => agent.destroy());
  request.write(body.subarray(0, body.length - 5));
  return { release: () => request.end(body.subarray(body.length - 5)), answer };
}

const METRICS_TOKEN = 'shutdown-test-metrics-token-0123456789abcdef';
/** What a server started with these serves on /metrics: the tests read its state there. */
const WITH_METRICS = { METRICS: 'true', METRICS_TOKEN };

/** One scrape of /metrics (the server started WITH_METRICS): a metric's value by name, NaN when absent. */
async function scrape(server: Started): Promise<(name: string) => number> {
  const response = await fetch(`${server.base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  const text = await response.text();
  return (name) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
}

/** argon2 jobs that have reached the server's gate so far: those started and those waiting. */
async function argon2JobsArrived(server: Started): Promise<number> {
  const value = await scrape(server);
  return value('authgraph_argon2_wait_seconds_count') + value('authgraph_argon2_queue_depth');
}

/** Waits until the server handles exactly `n` requests besides the scrape that asks. */
async function handling(server: Started, n: number): Promise<void> {
  await vi.waitFor(async () => expect((await scrape(server))('authgraph_http_requests_in_flight') - 1).toBe(n), {
    timeout: EXIT_BOUND_MS,
    interval: 50,
  });
}

describe('SIGTERM with requests in flight', () => {
  it(
    'finishes every login in flight with its AuthPayload, refuses new connections, and exits 0',
    async () => {
      // One hash at a time: the ten logins take a while to get through. The queue waits as long
      // as they need (the default 2 s would refuse the last ones as "busy" on a slow machine).
      const server = await startServer({ ARGON2_MAX_CONCURRENCY: '1', ARGON2_QUEUE_TIMEOUT_MS: '600000', ...WITH_METRICS });
      const { email } = await registerUser(server);
      const held = await Promise.all(
        Array.from({ length: 10 }, () => holdRequest(server.base, LOGIN, { input: { email, password: GOOD_PASSWORD } })),
      );
      await handling(server, 10); // the server has read their headers
      process.kill(await serverPid(server), 'SIGTERM');
      await vi.waitFor(() => expect(fetch(`${server.base}/health`)).rejects.toThrow(), { timeout: EXIT_BOUND_MS, interval: 50 });
      for (const request of held) request.release();

      const answers = await Promise.all(held.map((request) => request.answer));
      for (const answer of answers) {
        expect(answer.failure, JSON.stringify(answer)).toBeUndefined();
        expect(answer.status, JSON.stringify(answer)).toBe(200);
        expect(answer.body?.data?.login?.__typename, JSON.stringify(answer)).toBe('AuthPayload');
      }
      const exit = await within(server.exited, EXIT_BOUND_MS);
      expect(exit, `still running\n${server.stdout()}`).toEqual({ code: 0, signal: null });
    },
    TEST_TIMEOUT,
  );
});

/** Sends a whole GraphQL POST and resolves once it is written; hangUp() then closes its connection unanswered. */
async function sendAndHangUp(base: string, query: string, variables: Record<string, unknown>) {
  const body = JSON.stringify({ query, variables });
  const request = http.request(`${base}/graphql`, {
    method: 'POST',
    agent: false,
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
  });
  request.on('error', () => {}); // the hang-up is ours
  await new Promise<void>((resolve) => request.end(body, resolve));
  return { hangUp: () => request.destroy() };
}

describe('SIGTERM with requests whose clients hung up', () => {
  it(
    'finishes them before closing the database: every login makes its session, nothing is logged as an error, exit 0',
    async () => {
      const dataDir = newDataDir();
      // One hash at a time: most of the logins still wait for the argon2 gate at the signal.
      const server = await startServer(
        { ARGON2_MAX_CONCURRENCY: '1', ARGON2_QUEUE_TIMEOUT_MS: '600000', ...WITH_METRICS },
        dataDir,
      );
      const { email } = await registerUser(server);
      const before = await argon2JobsArrived(server);
      const logins = 30;
      const sent = await Promise.all(
        Array.from({ length: logins }, () => sendAndHangUp(server.base, LOGIN, { input: { email, password: GOOD_PASSWORD } })),
      );
      // Hung up only once the server has read every login: each has reached the argon2 gate. A
      // request the server has not read yet when it stops listening was never received, and is
      // not what this test is about.
      await vi.waitFor(async () => expect(await argon2JobsArrived(server)).toBe(before + logins), {
        timeout: EXIT_BOUND_MS,
        interval: 50,
      });
      for (const request of sent) request.hangUp();
      process.kill(await serverPid(server), 'SIGTERM');
      const exit = await within(server.exited, EXIT_BOUND_MS);
      expect(exit, `still running\n${server.stdout()}`).toEqual({ code: 0, signal: null });
      expect(logRecords(server).filter((record) => record.level >= 50)).toEqual([]);

      // The same database again: the user has a session per login, and the registration's.
      const again = await startServer({}, dataDir);
      const login = await gql(again.base, LOGIN, { input: { email, password: GOOD_PASSWORD } });
      const token = login.body.data?.login?.accessToken as string;
      const mine = await gql(again.base, MY_SESSIONS, {}, token);
      expect(mine.body.data?.me?.sessions, JSON.stringify(mine.body)).toHaveLength(logins + 2);
    },
    TEST_TIMEOUT,
  );
});

describe('SIGTERM with a viewerEvents stream open', () => {
  it(
    'ends the stream (complete) and exits 0 without waiting for SHUTDOWN_TIMEOUT',
    async () => {
      const server = await startServer({ SHUTDOWN_TIMEOUT: '60' });
      const { accessToken } = await registerUser(server);
      // yoga answers once the subscription has started: the stream is open when the headers arrive.
      const response = await fetch(`${server.base}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${accessToken}` },
        body: JSON.stringify({ query: VIEWER_EVENTS }),
      });
      expect(response.status).toBe(200);
      const body = response.text();
      process.kill(await serverPid(server), 'SIGTERM');
      expect((await within(body, EXIT_BOUND_MS)) ?? 'the stream is still open').toMatch(/event: complete/);
      const exit = await within(server.exited, EXIT_BOUND_MS);
      expect(exit, `still running\n${server.stdout()}`).toEqual({ code: 0, signal: null });
    },
    TEST_TIMEOUT,
  );
});

describe('a viewerEvents subscription arriving while draining', () => {
  it(
    'is refused with 503 SERVICE_UNAVAILABLE, opens no stream, and the server exits 0 without waiting for SHUTDOWN_TIMEOUT',
    async () => {
      const server = await startServer({ SHUTDOWN_TIMEOUT: '60', ...WITH_METRICS });
      const { accessToken } = await registerUser(server);
      // On a connection the server already holds (as a keep-alive one from a proxy would be),
      // its last bytes sent only once draining has started.
      const held = await holdRequest(server.base, VIEWER_EVENTS, {}, {
        accept: 'text/event-stream',
        authorization: `Bearer ${accessToken}`,
      });
      await handling(server, 1); // the server has read its headers
      process.kill(await serverPid(server), 'SIGTERM');
      await vi.waitFor(() => expect(fetch(`${server.base}/health`)).rejects.toThrow(), { timeout: EXIT_BOUND_MS, interval: 50 });
      held.release();
      const answer = await within(held.answer, EXIT_BOUND_MS);
      expect(answer?.status, JSON.stringify(answer)).toBe(503);
      expect(answer?.text).toContain('"code":"SERVICE_UNAVAILABLE"');
      const exit = await within(server.exited, EXIT_BOUND_MS);
      expect(exit, `still running\n${server.stdout()}`).toEqual({ code: 0, signal: null });
    },
    TEST_TIMEOUT,
  );
});

describe.skipIf(!onPostgres)('SIGTERM while a request waits on a silent database', () => {
  // Long database timeouts: the request would wait a minute on its own.
  const patient = { DATABASE_CONNECT_TIMEOUT: '60', DATABASE_STATEMENT_TIMEOUT: '60' };

  async function hangingRequest(server: Started) {
    const { accessToken } = await registerUser(server);
    await proxy!.blackhole();
    const answer = gql(server.base, ME, {}, accessToken).then(
      (response) => ({ ...response, failure: undefined, at: Date.now() }),
      (err: unknown) => ({ status: undefined, body: undefined, failure: String(err), at: Date.now() }),
    );
    await handling(server, 1); // the server has read it
    return { answer };
  }

  it(
    'exits at once on a second signal, cutting the request, with exit code 1',
    async () => {
      const server = await startServer({ ...patient, SHUTDOWN_TIMEOUT: '60', ...WITH_METRICS });
      const { answer } = await hangingRequest(server);
      const pid = await serverPid(server);
      process.kill(pid, 'SIGTERM');
      // Draining: the request is still waiting, so is the process.
      expect(await within(answer, 1000)).toBeNull();
      expect(server.hasExited()).toBe(false);

      const secondAt = Date.now();
      process.kill(pid, 'SIGTERM');
      const exit = await within(server.exited, EXIT_BOUND_MS);
      expect(exit, `still running\n${server.stdout()}`).toEqual({ code: 1, signal: null });
      const cut = await answer;
      expect(cut.failure, JSON.stringify(cut)).toBeDefined();
      expect(cut.at).toBeGreaterThanOrEqual(secondAt);
    },
    TEST_TIMEOUT,
  );

  it(
    'cuts a request still running after SHUTDOWN_TIMEOUT and exits with code 1',
    async () => {
      const server = await startServer({ ...patient, SHUTDOWN_TIMEOUT: '2', ...WITH_METRICS });
      const { answer } = await hangingRequest(server);
      const signalledAt = Date.now();
      process.kill(await serverPid(server), 'SIGTERM');
      const exit = await within(server.exited, EXIT_BOUND_MS);
      expect(exit, `still running\n${server.stdout()}`).toEqual({ code: 1, signal: null });
      const cut = await answer;
      expect(cut.failure, JSON.stringify(cut)).toBeDefined();
      // It had its SHUTDOWN_TIMEOUT (2 s) to finish.
      expect(cut.at - signalledAt).toBeGreaterThanOrEqual(1500);
    },
    TEST_TIMEOUT,
  );
});
