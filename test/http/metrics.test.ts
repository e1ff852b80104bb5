/**
 * GET /metrics: off unless METRICS=true, then only for the bearer METRICS_TOKEN; what it counts
 * (sign-ins, failures by reason, refreshes, reuse, lockouts, every refusal, argon2 queue, request
 * latency, the key listener), and that no label carries personal data.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import argon2 from 'argon2';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import type { DatabaseHandle } from '../../src/db/client.js';
import { createMetrics, HTTP_ROUTES, SIGN_IN_FAILURE_REASONS } from '../../src/metrics.js';
import { loginFrom, rawFetch, uniqueIp } from '../support/abuse.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { openTestDatabase } from '../support/database.js';
import { GOOD_PASSWORD, LOGIN, ME_ID, REFRESH, REGISTER, registerUser, uniqueEmail } from '../support/operations.js';
import { freePort, killGroup, killSpawnedServers, spawnServer, within } from '../support/server-process.js';

const TOKEN = `metrics-${randomBytes(24).toString('hex')}`;
const METRICS = { METRICS: 'true', METRICS_TOKEN: TOKEN };
const WRONG = 'not-the-password-9';

let database: DatabaseHandle;
let plain: TestApp; // no metrics, limits off: registers the users the others sign in
let t: TestApp; // metrics on, limits and lockout on (the IP limit out of the way)
beforeAll(async () => {
  database = await openTestDatabase();
  plain = await createTestApp({}, database);
  t = await createTestApp({ ...METRICS, RATE_LIMITS: 'on', RATE_LIMIT_LOGIN_IP: '1000/60', RATE_LIMIT_REGISTER_IP: '1000/60' }, database);
});
afterAll(async () => {
  killSpawnedServers();
  await database?.close();
});
afterEach(() => {
  vi.restoreAllMocks();
});

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

/** The metrics text, asserting a 200. */
async function scrape(app: TestApp): Promise<string> {
  const res = await rawFetch(app, '/metrics', bearer(TOKEN));
  expect(res.status, res.text).toBe(200);
  return res.text;
}

/** Every sample of the text: name, labels and value. */
function samples(text: string) {
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!match) throw new Error(`not a sample line: ${line}`);
      const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
      return { name: match[1]!, labels, value: Number(match[3]) };
    });
}

/** The value of the sample with exactly these labels; 0 when there is none. */
function valueOf(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels);
  const found = samples(text).find(
    (s) => s.name === name && Object.keys(s.labels).length === wanted.length && wanted.every(([k, v]) => s.labels[k] === v),
  );
  return found?.value ?? 0;
}

/** How much each of `series` grew while `work` ran. */
async function growth(app: TestApp, series: [name: string, labels?: Record<string, string>][], work: () => Promise<void>) {
  const before = await scrape(app);
  await work();
  const after = await scrape(app);
  return series.map(([name, labels]) => valueOf(after, name, labels) - valueOf(before, name, labels));
}

describe('GET /metrics: access', () => {
  it('is not served (404) unless METRICS=true, whatever the request carries', async () => {
    for (const init of [{}, bearer(TOKEN)]) {
      const res = await rawFetch(plain, '/metrics', init);
      expect(res.status).toBe(404);
      expect(res.text).not.toMatch(/authgraph_/);
    }
  });

  it('refuses a request without the token, with a wrong one, or in another scheme: 401 with WWW-Authenticate: Bearer', async () => {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong-token-wrong-token-wrong-token-0' },
      { authorization: `Bearer ${TOKEN.slice(0, -1)}` },
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: `Basic ${Buffer.from(`metrics:${TOKEN}`).toString('base64')}` },
      { authorization: TOKEN },
      { authorization: 'Bearer ' },
    ];
    for (const headers of attempts) {
      const res = await rawFetch(t, '/metrics', { headers });
      expect(res.status, JSON.stringify(headers)).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(res.text).not.toMatch(/authgraph_/);
    }
  });

  it('answers the token with Prometheus text, never cached', async () => {
    const res = await rawFetch(t, '/metrics', bearer(TOKEN));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.text).toContain('# TYPE authgraph_auth_events_total counter');
    expect(res.text).toContain('# TYPE authgraph_http_request_duration_seconds histogram');
    // The scheme is case-insensitive (RFC 6750).
    expect((await rawFetch(t, '/metrics', { headers: { authorization: `bearer ${TOKEN}` } })).status).toBe(200);
  });

  it('refuses METRICS=true without a METRICS_TOKEN of at least 32 characters and no whitespace, naming it', () => {
    expect(() => loadConfig({ METRICS: 'true' })).toThrow(ConfigError);
    expect(() => loadConfig({ METRICS: 'true' })).toThrow(/METRICS_TOKEN: required when METRICS=true/);
    expect(() => loadConfig({ METRICS: 'true', METRICS_TOKEN: 'x'.repeat(31) })).toThrow(/METRICS_TOKEN: must be at least 32 characters/);
    expect(() => loadConfig({ METRICS: 'true', METRICS_TOKEN: `${'x'.repeat(16)} ${'x'.repeat(16)}` })).toThrow(
      /METRICS_TOKEN: must not contain whitespace/,
    );
    expect(loadConfig({ METRICS: 'true', METRICS_TOKEN: 'x'.repeat(32) }).metrics).toEqual({ enabled: true, token: 'x'.repeat(32) });
    expect(loadConfig({ METRICS_TOKEN: 'short' }).metrics).toEqual({ enabled: false, token: undefined });
  });
});

describe('GET /metrics: what it counts', () => {
  it('counts sign-ins, failures by reason, refreshes, refresh reuse and lockouts', async () => {
    const [a, b] = [await registerUser(plain), await registerUser(plain)];
    const counts = await growth(
      t,
      [
        ['authgraph_auth_events_total', { type: 'login_success' }],
        ['authgraph_auth_events_total', { type: 'login_failure' }],
        ['authgraph_sign_in_failures_total', { reason: 'wrong_password' }],
        ['authgraph_sign_in_failures_total', { reason: 'unknown_email' }],
        ['authgraph_auth_events_total', { type: 'refresh' }],
        ['authgraph_auth_events_total', { type: 'refresh_reuse_detected' }],
        ['authgraph_auth_events_total', { type: 'lockout' }],
        ['authgraph_abuse_refusals_total', { kind: 'lockout', field: 'login' }],
        ['authgraph_auth_events_total', { type: 'rate_limited' }],
      ],
      async () => {
        const signedIn = await loginFrom(t, a.email, GOOD_PASSWORD, uniqueIp());
        expect(signedIn.__typename).toBe('AuthPayload');
        expect((await loginFrom(t, a.email, WRONG, uniqueIp())).__typename).toBe('InvalidCredentialsError');
        expect((await loginFrom(t, uniqueEmail(), WRONG, uniqueIp())).__typename).toBe('InvalidCredentialsError');
        const refreshed = await t.gql(REFRESH, { token: signedIn.refreshToken });
        expect(refreshed.data?.refresh.__typename).toBe('AuthPayload');
        t.clock.advance(t.config.refreshReuseGrace + 1);
        // The spent token again, after the grace period: a replay.
        expect((await t.gql(REFRESH, { token: signedIn.refreshToken })).data?.refresh.__typename).toBe('InvalidRefreshTokenError');
        // Five wrong passwords lock b (the fifth sets the lock); the next two are refused.
        for (let i = 0; i < 5; i++) expect((await loginFrom(t, b.email, WRONG, uniqueIp())).__typename).toBe('InvalidCredentialsError');
        for (let i = 0; i < 2; i++) expect((await loginFrom(t, b.email, GOOD_PASSWORD, uniqueIp())).__typename).toBe('RateLimitedError');
      },
    );
    expect(counts).toEqual([1, 7, 6, 1, 1, 1, 1, 2, 1]);
  });

  it('counts every rate-limit refusal, not only the first (which alone is audited)', async () => {
    const limited = await createTestApp({ ...METRICS, RATE_LIMITS: 'on', RATE_LIMIT_LOGIN_IP: '2/60' }, database);
    const ip = uniqueIp();
    const counts = await growth(
      limited,
      [
        ['authgraph_abuse_refusals_total', { kind: 'rate_limit', field: 'login' }],
        ['authgraph_auth_events_total', { type: 'rate_limited' }],
        ['authgraph_abuse_refusals_total', { kind: 'lockout', field: 'login' }],
      ],
      async () => {
        const answers = [];
        for (let i = 0; i < 6; i++) answers.push((await loginFrom(limited, uniqueEmail(), WRONG, ip)).__typename);
        expect(answers).toEqual([...Array(2).fill('InvalidCredentialsError'), ...Array(4).fill('RateLimitedError')]);
      },
    );
    expect(counts).toEqual([4, 1, 0]);
  });

  it('reports the argon2 queue depth while logins wait for the slot, and how long each waited', async () => {
    const gated = await createTestApp({ ...METRICS, ARGON2_MAX_CONCURRENCY: '1' }, database);
    const { email } = await registerUser(plain);
    const before = await scrape(gated);
    // The first login holds the only slot: its verification waits until released.
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const realVerify = argon2.verify.bind(argon2);
    const verify = vi.spyOn(argon2, 'verify').mockImplementationOnce(async (...args) => {
      await held;
      return realVerify(...args);
    });
    try {
      const logins = [gated.gql(LOGIN, { input: { email, password: WRONG } })];
      await vi.waitFor(() => expect(verify).toHaveBeenCalledTimes(1), { timeout: 15_000 });
      logins.push(gated.gql(LOGIN, { input: { email, password: WRONG } }), gated.gql(LOGIN, { input: { email, password: WRONG } }));
      await vi.waitFor(async () => expect(valueOf(await scrape(gated), 'authgraph_argon2_queue_depth')).toBe(2), { timeout: 15_000 });
      release();
      for (const login of await Promise.all(logins)) expect(login.data?.login.__typename).toBe('InvalidCredentialsError');
    } finally {
      release();
    }
    const after = await scrape(gated);
    expect(valueOf(after, 'authgraph_argon2_queue_depth')).toBe(0);
    expect(valueOf(after, 'authgraph_argon2_wait_seconds_count') - valueOf(before, 'authgraph_argon2_wait_seconds_count')).toBe(3);
    // The two that queued waited for the first one's release.
    expect(valueOf(after, 'authgraph_argon2_wait_seconds_sum')).toBeGreaterThan(0);
    expect(valueOf(after, 'authgraph_argon2_wait_seconds_bucket', { le: '0.001' })).toBe(1);
  });

  it('measures request latency by route and status, every other path as `other`', async () => {
    const own = await createTestApp(METRICS, database);
    await rawFetch(own, '/health');
    await rawFetch(own, '/ready');
    await rawFetch(own, '/.well-known/jwks.json'); // HS256: 404
    await own.gql('{ __typename }');
    await rawFetch(own, `/users/${uniqueEmail()}`);
    await rawFetch(own, '/metrics'); // 401
    const text = await scrape(own);
    const count = (route: string, status: string) => valueOf(text, 'authgraph_http_request_duration_seconds_count', { route, status });
    expect(count('/health', '200')).toBe(1);
    expect(count('/ready', '200')).toBe(1);
    expect(count('/.well-known/jwks.json', '404')).toBe(1);
    expect(count('/graphql', '200')).toBe(1);
    expect(count('other', '404')).toBe(1);
    expect(count('/metrics', '401')).toBe(1);
    expect(valueOf(text, 'authgraph_http_request_duration_seconds_sum', { route: '/graphql', status: '200' })).toBeGreaterThan(0);
  });

  it('shows the signing-key listener connected under stored keys, and none under HS256; the change listener under both', async () => {
    const stored = await createTestApp({ ...METRICS, JWT_SECRET: '' }, database);
    try {
      expect(stored.config.jwt.algorithm).toBe('ES256');
      expect(valueOf(await scrape(stored), 'authgraph_listener_connected', { channel: 'signing_keys' })).toBe(1);
    } finally {
      await stored.close();
    }
    const symmetric = await scrape(t);
    expect(symmetric).not.toMatch(/^authgraph_listener_connected\{channel="signing_keys"\}/m);
    expect(valueOf(symmetric, 'authgraph_listener_connected', { channel: 'changes' })).toBe(1);
  });

  it('counts revocation checks by where they were answered: the first from the database, the next from memory', async () => {
    const session = await registerUser(plain);
    const before = await scrape(t);
    const memory = valueOf(before, 'authgraph_revocation_checks_total', { source: 'memory' })!;
    const database = valueOf(before, 'authgraph_revocation_checks_total', { source: 'database' })!;
    for (let i = 0; i < 3; i += 1) expect((await t.gql(ME_ID, {}, { token: session.accessToken })).data?.me).toEqual({ id: session.userId });
    const after = await scrape(t);
    expect(valueOf(after, 'authgraph_revocation_checks_total', { source: 'database' })).toBe(database + 1);
    expect(valueOf(after, 'authgraph_revocation_checks_total', { source: 'memory' })).toBe(memory + 2);
  });
});

describe('GET /metrics: no personal data', () => {
  /** Every label value comes from a closed set. */
  function expectFixedLabels(text: string) {
    const allowed: Record<string, (value: string) => boolean> = {
      type: (v) => /^[a-z_]+$/.test(v),
      reason: (v) => [...SIGN_IN_FAILURE_REASONS, 'other'].includes(v as never),
      kind: (v) => v === 'rate_limit' || v === 'lockout',
      field: (v) => /^[a-zA-Z]+$/.test(v),
      route: (v) => [...HTTP_ROUTES, 'other'].includes(v as never),
      status: (v) => /^\d{3}$/.test(v),
      le: (v) => v === '+Inf' || Number.isFinite(Number(v)),
      channel: (v) => v === 'signing_keys' || v === 'changes',
      source: (v) => v === 'memory' || v === 'database',
    };
    for (const { name, labels } of samples(text)) {
      expect(name).toMatch(/^authgraph_/);
      for (const [label, value] of Object.entries(labels)) {
        expect(allowed[label]?.(value), `${name} ${label}="${value}"`).toBe(true);
      }
    }
  }

  it('carries no email, user id, IP, user agent, path or token after sign-ins, failures, refreshes, lockouts and refusals', async () => {
    const limited = await createTestApp({ ...METRICS, RATE_LIMITS: 'on', RATE_LIMIT_LOGIN_IP: '1/60' }, database);
    const secrets: string[] = [TOKEN];
    const userAgent = `agent-${randomBytes(6).toString('hex')}`;
    for (let i = 0; i < 2; i++) {
      const ip = uniqueIp();
      const email = uniqueEmail('metrics-pii');
      const registered = await t.gql(REGISTER, { input: { email, password: GOOD_PASSWORD } }, { ip, headers: { 'user-agent': userAgent } });
      const session = registered.data?.register;
      expect(session?.__typename).toBe('AuthPayload');
      const signedIn = await loginFrom(t, email, GOOD_PASSWORD, ip);
      const refreshed = await t.gql(REFRESH, { token: signedIn.refreshToken }, { ip });
      // Locked out (five failures), then refused; and refused by the IP limit of `limited`.
      for (let j = 0; j < 6; j++) await loginFrom(t, email, WRONG, uniqueIp());
      for (let j = 0; j < 2; j++) await loginFrom(limited, email, WRONG, ip);
      secrets.push(email, ip, session.user.id, session.accessToken, session.refreshToken, signedIn.accessToken, signedIn.refreshToken);
      secrets.push(refreshed.data?.refresh.refreshToken);
    }
    const unknown = uniqueEmail('metrics-unknown');
    await loginFrom(t, unknown, WRONG, uniqueIp());
    const path = `/profile/${unknown}`;
    await rawFetch(t, path);
    secrets.push(unknown, path, userAgent);

    const texts = [await scrape(t), await scrape(limited)];
    expect(valueOf(texts[0]!, 'authgraph_abuse_refusals_total', { kind: 'lockout', field: 'login' })).toBeGreaterThan(0);
    expect(valueOf(texts[1]!, 'authgraph_abuse_refusals_total', { kind: 'rate_limit', field: 'login' })).toBeGreaterThan(0);
    for (const text of texts) {
      for (const secret of secrets) {
        expect(typeof secret).toBe('string');
        expect(text).not.toContain(secret);
      }
      expectFixedLabels(text);
    }
  });

  it('counts a sign-in failure whose reason is not in the fixed set as `other`, never by its text', async () => {
    const metrics = createMetrics();
    const email = uniqueEmail();
    metrics.countAuthEvent('login_failure', { reason: email });
    metrics.countAuthEvent('login_failure', { reason: 'wrong_password' });
    metrics.countAuthEvent('login_failure', {});
    const text = await metrics.registry.metrics();
    expect(text).not.toContain(email);
    expect(valueOf(text, 'authgraph_sign_in_failures_total', { reason: 'other' })).toBe(2);
    expect(valueOf(text, 'authgraph_sign_in_failures_total', { reason: 'wrong_password' })).toBe(1);
    expectFixedLabels(text);
  });
});

describe('npx tsx src/server.ts with METRICS=true', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'authgraph-metrics-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('refuses to start without METRICS_TOKEN: exit code 1, a message naming it, no stack trace', async () => {
    const port = await freePort();
    const server = spawnServer(
      { METRICS: 'true', METRICS_TOKEN: undefined, DATA_DIR: dataDir, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info' },
      port,
    );
    try {
      const exit = await within(server.exited, 40_000);
      expect(exit, `still running\n${server.stdout()}\n${server.stderr()}`).toEqual({ code: 1, signal: null });
      expect(server.stderr()).toMatch(/^authgraph cannot start: /m);
      expect(server.stderr()).toContain('METRICS_TOKEN');
      expect(server.stderr()).not.toMatch(/^\s+at /m);
      expect(existsSync(path.join(dataDir, 'pglite'))).toBe(false);
    } finally {
      killGroup(server.child);
    }
  }, 60_000);
});
