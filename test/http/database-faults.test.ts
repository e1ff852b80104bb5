/**
 * The real server (a child process) on PostgreSQL, reached through a TCP proxy the tests break:
 * backends terminated (what a failover does), connections cut, a database that accepts
 * connections and never answers. Whatever the database does, the process stays up, every
 * request gets an HTTP answer with a clean GraphQL error in bounded time, and the server serves
 * again once the database is back, without a restart.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { onPostgres, postgresUrl } from '../support/database.js';
import { GOOD_PASSWORD, LOGIN, ME, REGISTER, uniqueEmail } from '../support/operations.js';
import { createScratchDatabase, type ScratchDatabase } from '../support/pg-scratch.js';
import {
  freePort,
  gql,
  killGroup,
  killSpawnedServers,
  logRecords,
  spawnServer,
  waitUntilHealthy,
  type Started,
} from '../support/server-process.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const TEST_TIMEOUT = 120_000;
/** The defaults are 5 s (connect) and 5 s (statement): an answer must come well before this. */
const ANSWER_BOUND_MS = 20_000;
/** Longer than any answer may take: a request still open then has hung. */
const HANG_MS = 60_000;

interface Answer {
  /** The HTTP status and JSON body; absent when the request got no HTTP answer. */
  status?: number;
  body?: Record<string, any>;
  /** Why no HTTP answer came (connection reset, hang). */
  failure?: string;
  ms: number;
}

async function answer(request: (signal: AbortSignal) => Promise<{ status: number; body: Record<string, any> }>): Promise<Answer> {
  const started = Date.now();
  try {
    const { status, body } = await request(AbortSignal.timeout(HANG_MS));
    return { status, body, ms: Date.now() - started };
  } catch (err) {
    return { failure: String((err as Error).cause ?? err), ms: Date.now() - started };
  }
}

/** Every answer is HTTP with a GraphQL body: data, or errors that say only "unavailable". */
function expectCleanAnswers(answers: Answer[]): void {
  for (const a of answers) {
    expect(a.failure, JSON.stringify(a)).toBeUndefined();
    const errors: { message: string; extensions?: { code?: string } }[] = a.body?.errors ?? [];
    if (errors.length === 0) {
      expect(a.status, JSON.stringify(a)).toBe(200);
      expect(a.body?.data, JSON.stringify(a)).toBeTruthy();
      continue;
    }
    for (const error of errors) {
      expect(error.extensions?.code, JSON.stringify(a)).toBe('SERVICE_UNAVAILABLE');
      expect(error.message).not.toMatch(/postgres|ECONN|socket|timeout/i);
    }
  }
}

describe.skipIf(!onPostgres)('the server on PostgreSQL when the database fails (through a TCP proxy)', () => {
  let scratch: ScratchDatabase;
  let proxy: TcpProxy;
  let server: Started;
  const email = uniqueEmail('faults');

  /**
   * Faults that reached the last-resort process handlers (src/process-faults.ts): the process
   * survived them, but the driver should not have let them escape in the first place.
   */
  const escapedFaults = () => logRecords(server).filter((record) => /serving on/.test(record.msg));

  const login = (signal?: AbortSignal) => gql(server.base, LOGIN, { input: { email, password: GOOD_PASSWORD } }, undefined, signal);

  /** Logs in, retrying while the server recovers; fails when it has not recovered in time. */
  async function loginWhenRecovered(): Promise<string> {
    const deadline = Date.now() + 45_000;
    let last: unknown;
    while (Date.now() < deadline) {
      const a = await answer(login);
      last = a;
      const payload = a.body?.data?.login;
      if (payload?.__typename === 'AuthPayload') return payload.accessToken as string;
      await delay(500);
    }
    throw new Error(`the server did not serve login again after the database came back: ${JSON.stringify(last)}`);
  }

  /** Runs `workers` loops of login and me until stopped; returns every answer. */
  function load(token: string, workers: number) {
    let running = true;
    const answers: Answer[] = [];
    const loops = Array.from({ length: workers }, async (_, i) => {
      while (running) {
        answers.push(await answer((signal) => (i % 2 === 0 ? login(signal) : gql(server.base, ME, {}, token, signal))));
      }
    });
    return {
      answers,
      async stop() {
        running = false;
        await Promise.all(loops);
        return answers;
      },
    };
  }

  /**
   * Breaks the database with `fault` while logins and me run, then checks that the process is
   * alive, that no driver fault escaped to the process handlers, that every request got a clean
   * answer, and that it serves again.
   */
  async function survives(fault: () => Promise<void>) {
    const token = await loginWhenRecovered();
    const traffic = load(token, 12);
    await fault();
    await delay(500);
    const answers = await traffic.stop();

    expect(server.hasExited(), server.stderr()).toBe(false);
    expect(escapedFaults()).toEqual([]);
    expect(answers.length).toBeGreaterThan(12);
    expectCleanAnswers(answers);
    await loginWhenRecovered();
    expect(server.hasExited(), server.stderr()).toBe(false);
  }

  let target: URL;
  beforeAll(async () => {
    scratch = await createScratchDatabase();
    target = new URL(postgresUrl!);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  });

  beforeEach(async () => {
    await proxy.restore();
    const port = await freePort();
    server = spawnServer(
      {
        DATABASE_URL: `postgres://postgres@127.0.0.1:${proxy.port}/${scratch.name}`,
        // The listener (LISTEN/NOTIFY) connects straight to the server: these faults are the pool's.
        DATABASE_LISTEN_URL: `postgres://postgres@${target.host}/${scratch.name}`,
        JWT_SECRET: 'faults-test-secret-faults-test-secret-0123456789',
        HOST: '127.0.0.1',
        PORT: String(port),
        LOG_LEVEL: 'warn',
        RATE_LIMITS: 'off',
      },
      port,
    );
    await waitUntilHealthy(server);
    const registered = await gql(server.base, REGISTER, { input: { email, password: GOOD_PASSWORD } });
    const code = registered.body.data?.register?.code;
    if (code !== 'EMAIL_TAKEN') expect(registered.body.data?.register?.__typename, JSON.stringify(registered.body)).toBe('AuthPayload');
  });

  afterEach(() => killGroup(server.child));

  afterAll(async () => {
    killSpawnedServers();
    await proxy?.close();
    await scratch?.drop();
  });

  it(
    'survives pg_terminate_backend on its backends with logins and me in flight, answers every request, and serves again',
    () =>
      survives(async () => {
        // Several rounds, so that some land on connections that are still starting up.
        for (let round = 0; round < 6; round++) {
          await delay(400);
          await scratch.sql`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${scratch.name} and pid <> pg_backend_pid()`;
        }
      }),
    TEST_TIMEOUT,
  );

  it(
    'survives its database connections being cut (and refused) with logins in flight, answers every request, and serves again',
    () =>
      survives(async () => {
        // Cut, refuse for a moment, let connections come back, cut again while they start up.
        for (let round = 0; round < 6; round++) {
          await delay(300);
          await proxy.cut();
          await delay(300);
          await proxy.restore();
        }
      }),
    TEST_TIMEOUT,
  );

  /**
   * me with a valid token, login and /ready, at once, while the pool's database is silent. The
   * listener still hears every change, so the instance answers me from memory for a token it has
   * checked before (`held`); what needs the database fails cleanly.
   */
  async function requestsDuringSilence(token: string, held: boolean) {
    const [me, signIn, ready] = await Promise.all([
      answer((signal) => gql(server.base, ME, {}, token, signal)),
      answer(login),
      answer(async (signal) => {
        const response = await fetch(`${server.base}/ready`, { signal });
        return { status: response.status, body: {} };
      }),
    ]);
    for (const a of [me, signIn, ready]) {
      expect(a.failure, JSON.stringify(a)).toBeUndefined();
      expect(a.ms, JSON.stringify(a)).toBeLessThan(ANSWER_BOUND_MS);
    }
    expect(ready.status).toBe(503);
    if (held) expect(me.body?.data?.me?.email, JSON.stringify(me)).toBe(email);
    else expect(me.body?.data?.me ?? null, JSON.stringify(me)).toBeNull();
    const failed = held ? [signIn] : [me, signIn];
    expect(signIn.body?.data?.login ?? null, JSON.stringify(signIn)).toBeNull();
    for (const a of failed) expect(a.body?.errors?.length, JSON.stringify(a)).toBeGreaterThan(0);
    expectCleanAnswers([me, signIn]);
  }

  it(
    'answers login and /ready with a clean error in bounded time while its pooled connections are silently partitioned (me from memory), and serves again',
    async () => {
      const token = await loginWhenRecovered();
      // Warm the pool: connections are open and idle when the network goes silent.
      await Promise.all(Array.from({ length: 6 }, () => gql(server.base, ME, {}, token)));
      await proxy.blackhole();
      await requestsDuringSilence(token, true);
      // A second round on the same silent network: the pool did not stay wedged on the first.
      await requestsDuringSilence(token, true);
      await proxy.restore();
      await loginWhenRecovered();
      expect(server.hasExited(), server.stderr()).toBe(false);
    },
    TEST_TIMEOUT,
  );

  it(
    'drops the connections a failover left silent and serves again on new ones, without a restart',
    async () => {
      const token = await loginWhenRecovered();
      // Open the whole pool (10): logins of one email queue on its row, each holding a connection.
      for (let round = 0; round < 10 && proxy.connections() < 10; round++) {
        await Promise.all(Array.from({ length: 30 }, () => login()));
      }
      expect(proxy.connections()).toBe(10);
      // The open connections will never hear from their server again; new ones reach a live one.
      proxy.strand();
      // Traffic enough to meet every stranded connection at once (each is found out when used).
      const during = await Promise.all(Array.from({ length: 12 }, () => answer((signal) => gql(server.base, ME, {}, token, signal))));
      for (const a of during) expect(a.ms, JSON.stringify(a)).toBeLessThan(ANSWER_BOUND_MS);
      expectCleanAnswers(during);
      await loginWhenRecovered();
      expect(server.hasExited(), server.stderr()).toBe(false);
    },
    TEST_TIMEOUT,
  );

  it(
    'answers me (a token not held), login and /ready with a clean error in bounded time while the database accepts connections and never answers, and serves again',
    async () => {
      const token = await loginWhenRecovered();
      // No connection survives; every new one is accepted and then left unanswered.
      await proxy.cut();
      await proxy.blackhole();
      // A token this instance never checked: its session must be read from the database.
      await requestsDuringSilence(token, false);
      await proxy.restore();
      await loginWhenRecovered();
      expect(server.hasExited(), server.stderr()).toBe(false);
    },
    TEST_TIMEOUT,
  );
});
