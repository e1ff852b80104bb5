import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../../src/db/client.js';
import { rawFetch, type RawResponse } from '../support/abuse.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { openTestDatabase } from '../support/database.js';
import { listen, type Listening } from '../support/listen.js';
import { ME, registerUser } from '../support/operations.js';

const PRODUCTION = { NODE_ENV: 'production', SMTP_URL: 'smtp://127.0.0.1:2525', RP_ID: 'app.example', RP_ORIGINS: 'https://app.example' };
const APP_ORIGIN = 'https://app.example';
const EVIL_ORIGIN = 'https://evil.example';

let database: DatabaseHandle;
let t: TestApp; // development defaults
let prod: TestApp; // production, no CORS_ORIGINS
let server: Listening;
let base: string;
beforeAll(async () => {
  database = await openTestDatabase();
  t = await createTestApp({}, database);
  prod = await createTestApp(PRODUCTION, database);
  server = await listen(t.app);
  base = server.url;
});
afterAll(async () => {
  await server?.close();
  await database?.close();
});

const json = (body: unknown, headers: Record<string, string> = {}) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

/** The directives of a Content-Security-Policy, by name. */
function cspOf(headers: Headers): Map<string, string[]> {
  const value = headers.get('content-security-policy');
  expect(value, 'Content-Security-Policy').toBeTruthy();
  return new Map(
    value!
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter((parts) => parts[0])
      .map(([name, ...sources]) => [name!.toLowerCase(), sources]),
  );
}

function expectSecurityHeaders(res: RawResponse, label: string) {
  expect(res.headers.get('x-content-type-options'), label).toBe('nosniff');
  expect(res.headers.get('referrer-policy'), label).toBe('no-referrer');
  expect(cspOf(res.headers).get('frame-ancestors'), label).toEqual(["'none'"]);
}

describe('security headers', () => {
  it('are on a GraphQL answer: nosniff, no-referrer, no-store, a CSP with frame-ancestors none and no sources', async () => {
    const res = await rawFetch(t, '/graphql', json({ query: '{ __typename }' }));
    expect(res.status).toBe(200);
    expectSecurityHeaders(res, 'graphql');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(cspOf(res.headers).get('default-src')).toEqual(["'none'"]);
    expect(res.headers.get('x-frame-options')).toBe('DENY');
  });

  it('are on an answer that carries tokens (register): Cache-Control no-store', async () => {
    const res = await rawFetch(
      t,
      '/graphql',
      json({
        query: 'mutation R($input: RegisterInput!) { register(input: $input) { __typename ... on AuthPayload { accessToken } } }',
        variables: { input: { email: `h-${Date.now()}@example.com`, password: 'vivid-Otter-42-lantern' } },
      }),
    );
    expect(JSON.parse(res.text).data.register.__typename).toBe('AuthPayload');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expectSecurityHeaders(res, 'register');
  });

  it('are on /health and /ready', async () => {
    for (const path of ['/health', '/ready']) {
      const res = await rawFetch(t, path);
      expect(res.status, path).toBe(200);
      expectSecurityHeaders(res, path);
    }
  });

  it('are on every error answer (400, 403, 404, 405, 406, 411, 413, 415, 431) and on a preflight', async () => {
    const stream = () =>
      new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode('{"query":"{ __typename }"}'));
          c.close();
        },
      });
    const cases: Array<[string, TestApp, string, RequestInit & { duplex?: 'half' }, number]> = [
      ['batching', t, '/graphql', json([{ query: '{ __typename }' }]), 400],
      ['malformed JSON', t, '/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{ nope' }, 400],
      ['csrf', t, '/graphql', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'query' }, 403],
      ['unknown path', t, '/nothing-here', { method: 'GET' }, 404],
      ['mutation over GET', t, '/graphql?query=mutation%7Blogout%7D', { method: 'GET', headers: { 'x-graphql-yoga-csrf': '1' } }, 405],
      ['graphiql off', prod, '/graphql', { method: 'GET', headers: { accept: 'text/html' } }, 406],
      ['no content-length', t, '/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: stream(), duplex: 'half' }, 411],
      ['too large', t, '/graphql', json({ query: '{ __typename }', variables: { pad: 'x'.repeat(200_000) } }), 413],
      ['unsupported media type', t, '/graphql', { method: 'POST', headers: { 'content-type': 'text/plain', 'x-graphql-yoga-csrf': '1' }, body: 'x' }, 415],
      ['authorization too large', t, '/graphql', json({ query: '{ __typename }' }, { authorization: `Bearer ${'a'.repeat(17_000)}` }), 431],
      ['preflight', t, '/graphql', { method: 'OPTIONS', headers: { origin: APP_ORIGIN, 'access-control-request-method': 'POST' } }, 204],
    ];
    for (const [label, app, path, init, status] of cases) {
      const res = await rawFetch(app, path, init);
      expect(res.status, label).toBe(status);
      expectSecurityHeaders(res, label);
      if (path.startsWith('/graphql')) expect(res.headers.get('cache-control'), label).toBe('no-store');
    }
  });

  it('are on a GraphQL error answer (UNAUTHENTICATED, validation error)', async () => {
    for (const query of [ME, '{ nope }']) {
      const res = await rawFetch(t, '/graphql', json({ query }, { authorization: 'Bearer not-a-token' }));
      expect(JSON.parse(res.text).errors.length, query).toBeGreaterThanOrEqual(1);
      expectSecurityHeaders(res, query);
      expect(res.headers.get('cache-control')).toBe('no-store');
    }
  });

  it('serves GraphiQL self-contained, under a CSP that allows no other origin and forbids framing', async () => {
    const res = await rawFetch(t, '/graphql', { method: 'GET', headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    // No script or stylesheet comes from elsewhere: the page carries its own.
    expect(res.text).not.toMatch(/<script[^>]+src=/);
    expect(res.text).not.toMatch(/<link[^>]+stylesheet/);
    expect(res.text).toContain('renderYogaGraphiQL');
    const csp = cspOf(res.headers);
    expect(csp.get('default-src')).toEqual(["'none'"]);
    expect(csp.get('script-src')).toEqual(["'unsafe-inline'"]);
    expect(csp.get('style-src')).toEqual(["'unsafe-inline'"]);
    expect(csp.get('worker-src')).toEqual(['blob:']);
    expect(csp.get('connect-src')).toEqual(["'self'"]);
    expect(csp.get('frame-ancestors')).toEqual(["'none'"]);
    expect([...csp.values()].flat().filter((source) => /^https?:/.test(source))).toEqual([]);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  });

  it('the JSON CSP does not allow scripts from anywhere', async () => {
    const res = await rawFetch(t, '/graphql', json({ query: '{ __typename }' }));
    const csp = cspOf(res.headers);
    expect(csp.get('script-src')).toBeUndefined();
    expect(csp.get('default-src')).toEqual(["'none'"]);
  });

  it('include Strict-Transport-Security only when PUBLIC_URL is https', async () => {
    const https = await createTestApp({ PUBLIC_URL: 'https://auth.example.com' }, database);
    const http = await createTestApp({ PUBLIC_URL: 'http://auth.example.com' }, database);
    for (const path of ['/health', '/graphql']) {
      const init = path === '/graphql' ? json({ query: '{ __typename }' }) : {};
      const on = await rawFetch(https, path, init);
      const hsts = on.headers.get('strict-transport-security');
      expect(hsts, path).toMatch(/^max-age=(\d+)/);
      expect(Number(/max-age=(\d+)/.exec(hsts!)![1])).toBeGreaterThanOrEqual(15_552_000); // at least 180 days
      expect((await rawFetch(http, path, init)).headers.get('strict-transport-security'), path).toBeNull();
      expect((await rawFetch(t, path, init)).headers.get('strict-transport-security'), path).toBeNull();
    }
  });
});

describe('CORS', () => {
  const preflight = (origin: string) => ({
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, authorization' },
  });

  it('with CORS_ORIGINS=https://app.example, a preflight from that origin is allowed', async () => {
    const app = await createTestApp({ CORS_ORIGINS: APP_ORIGIN }, database);
    const res = await rawFetch(app, '/graphql', preflight(APP_ORIGIN));
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    const post = await rawFetch(app, '/graphql', json({ query: '{ __typename }' }, { origin: APP_ORIGIN }));
    expect(post.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
  });

  it('with CORS_ORIGINS=https://app.example, another origin is not allowed (preflight and request)', async () => {
    const app = await createTestApp({ CORS_ORIGINS: APP_ORIGIN }, database);
    for (const res of [
      await rawFetch(app, '/graphql', preflight(EVIL_ORIGIN)),
      await rawFetch(app, '/graphql', json({ query: '{ __typename }' }, { origin: EVIL_ORIGIN })),
    ]) {
      const allowed = res.headers.get('access-control-allow-origin');
      // Either no header, or one naming only the configured origin (which a browser at another origin refuses).
      expect([null, APP_ORIGIN]).toContain(allowed);
    }
  });

  it('with CORS_ORIGINS, every answer varies by Origin (listed or not, preflight, request, the public key set)', async () => {
    const app = await createTestApp({ CORS_ORIGINS: APP_ORIGIN }, database);
    for (const res of [
      await rawFetch(app, '/graphql', preflight(APP_ORIGIN)),
      await rawFetch(app, '/graphql', json({ query: '{ __typename }' }, { origin: APP_ORIGIN })),
      await rawFetch(app, '/graphql', json({ query: '{ __typename }' }, { origin: EVIL_ORIGIN })),
      await rawFetch(app, '/.well-known/jwks.json', { headers: { origin: APP_ORIGIN } }),
    ]) {
      const vary = (res.headers.get('vary') ?? '').split(',').map((name) => name.trim().toLowerCase());
      expect(vary).toContain('origin');
    }
  });

  it('with several CORS_ORIGINS, allows each listed one and no other', async () => {
    const other = 'https://admin.example';
    const app = await createTestApp({ CORS_ORIGINS: `${APP_ORIGIN}, ${other}` }, database);
    expect((await rawFetch(app, '/graphql', preflight(APP_ORIGIN))).headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
    expect((await rawFetch(app, '/graphql', preflight(other))).headers.get('access-control-allow-origin')).toBe(other);
    const evil = (await rawFetch(app, '/graphql', preflight(EVIL_ORIGIN))).headers.get('access-control-allow-origin');
    expect([null, 'null']).toContain(evil);
  });

  it('lets a browser cache an allowed preflight for CORS_MAX_AGE seconds (600 by default; 0: no header)', async () => {
    const listed = await createTestApp({ CORS_ORIGINS: APP_ORIGIN }, database);
    const longer = await createTestApp({ CORS_ORIGINS: APP_ORIGIN, CORS_MAX_AGE: '7200' }, database);
    const none = await createTestApp({ CORS_ORIGINS: APP_ORIGIN, CORS_MAX_AGE: '0' }, database);
    const maxAge = async (app: TestApp, origin = APP_ORIGIN) =>
      (await rawFetch(app, '/graphql', preflight(origin))).headers.get('access-control-max-age');
    expect(await maxAge(listed)).toBe('600');
    expect(await maxAge(t, EVIL_ORIGIN)).toBe('600'); // development: any origin
    expect(await maxAge(longer)).toBe('7200');
    expect(await maxAge(none)).toBeNull();
    // An origin that is not allowed gets no CORS header at all, this one included.
    expect(await maxAge(listed, EVIL_ORIGIN)).toBeNull();
  });

  it('never allows the opaque origin "null" (sandboxed iframes, file: pages) unless it is listed', async () => {
    const app = await createTestApp({ CORS_ORIGINS: `${APP_ORIGIN}, https://admin.example` }, database);
    const res = await rawFetch(app, '/graphql', preflight('null'));
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const post = await rawFetch(app, '/graphql', json({ query: '{ __typename }' }, { origin: 'null' }));
    expect(post.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('never allows credentials (bearer tokens, not cookies)', async () => {
    const listed = await createTestApp({ CORS_ORIGINS: APP_ORIGIN }, database);
    for (const [label, app, origin] of [
      ['listed origin', listed, APP_ORIGIN],
      ['development, any origin', t, EVIL_ORIGIN],
    ] as const) {
      const res = await rawFetch(app, '/graphql', preflight(origin));
      expect(res.headers.get('access-control-allow-credentials'), label).not.toBe('true');
    }
  });

  it('in production without CORS_ORIGINS, no origin is allowed', async () => {
    for (const origin of [APP_ORIGIN, EVIL_ORIGIN, 'http://localhost:3000']) {
      const pre = await rawFetch(prod, '/graphql', preflight(origin));
      expect(pre.headers.get('access-control-allow-origin'), origin).toBeNull();
      const post = await rawFetch(prod, '/graphql', json({ query: '{ __typename }' }, { origin }));
      expect(post.status).toBe(200);
      expect(post.headers.get('access-control-allow-origin'), origin).toBeNull();
    }
  });

  it('in production with CORS_ORIGINS, the listed origin is allowed', async () => {
    const app = await createTestApp({ ...PRODUCTION, CORS_ORIGINS: APP_ORIGIN }, database);
    expect((await rawFetch(app, '/graphql', preflight(APP_ORIGIN))).headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
  });

  it('in development without CORS_ORIGINS, any origin is allowed', async () => {
    for (const origin of [APP_ORIGIN, 'http://localhost:5173']) {
      const allowed = (await rawFetch(t, '/graphql', preflight(origin))).headers.get('access-control-allow-origin');
      expect([origin, '*']).toContain(allowed);
    }
  });
});

/** A raw request over the real port; `chunks` are written one by one (chunked when no content-length is set). */
function send(
  method: string,
  path: string,
  headers: Record<string, string>,
  chunks: string[] = [],
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { method, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

/** Writes `raw` to a new socket on the real port and returns everything read until the server closes it. */
function rawExchange(raw: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: server.port }, () => socket.end(raw));
    const parts: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => parts.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(parts).toString('utf8')));
  });
}

describe('over a real HTTP port', () => {
  it('refuses a chunked POST without Content-Length with 411', async () => {
    const body = JSON.stringify({ query: '{ __typename }' });
    const res = await send('POST', '/graphql', { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, [
      body.slice(0, 10),
      body.slice(10),
    ]);
    expect(res.status).toBe(411);
    expect(JSON.parse(res.body).errors[0].message).toBe('A Content-Length header is required.');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });

  it('reads no byte past Content-Length: what follows is the next request on the socket, not more body', async () => {
    // The body bound is Content-Length (checked against BODY_LIMIT before parsing): node's
    // parser ends the body there, so a longer body can't slip past the limit.
    const body = '{"query":"{ __typename }"}';
    const head = (length: number) =>
      `POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;
    const answers = await rawExchange(head(body.length) + body + head(200_000) + 'x'.repeat(200_000));
    expect(answers).toMatch(/^HTTP\/1\.1 200 /);
    expect(answers).toContain('{"data":{"__typename":"Query"}}');
    expect(answers).toContain('HTTP/1.1 413 ');
  });

  it('refuses a request with both Content-Length and Transfer-Encoding (smuggling) before the app sees it', async () => {
    const answers = await rawExchange(
      'POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n' +
        '1a\r\n{"query":"{ __typename }"}\r\n0\r\n\r\n',
    );
    expect(answers).toMatch(/^HTTP\/1\.1 400 Bad Request/);
    expect(answers).not.toContain('__typename');
  });

  it('refuses a body over BODY_LIMIT with 413', async () => {
    const body = JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(110_000) } });
    const res = await send('POST', '/graphql', { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }, [body]);
    expect(res.status).toBe(413);
  });

  it('refuses an oversized Authorization header with 431', async () => {
    const body = JSON.stringify({ query: '{ __typename }' });
    const res = await send(
      'POST',
      '/graphql',
      { 'content-type': 'application/json', 'content-length': String(body.length), authorization: `Bearer ${'a'.repeat(17_000)}` },
      [body],
    );
    expect(res.status).toBe(431);
  });

  it('answers a normal request with every security header', async () => {
    const { accessToken } = await registerUser(t);
    const body = JSON.stringify({ query: ME });
    const res = await send(
      'POST',
      '/graphql',
      { 'content-type': 'application/json', 'content-length': String(body.length), authorization: `Bearer ${accessToken}` },
      [body],
    );
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).data.me.id).toBeTruthy();
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
  });
});
