import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { sessions } from '../../src/db/schema.js';
import type { DatabaseHandle } from '../../src/db/client.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { openTestDatabase } from '../support/database.js';
import { listen, type Listening } from '../support/listen.js';
import { GOOD_PASSWORD, ME, REGISTER, uniqueEmail } from '../support/operations.js';

/** POSTs one GraphQL operation over real HTTP. */
async function post(
  base: string,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any }> {
  const response = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: await response.json() };
}

/** Registers over HTTP and returns the new user's id and tokens. */
async function registerOverHttp(base: string, headers: Record<string, string> = {}) {
  const email = uniqueEmail('http');
  const { status, body } = await post(base, REGISTER, { input: { email, password: GOOD_PASSWORD } }, headers);
  expect(status).toBe(200);
  const payload = body.data?.register;
  expect(payload?.__typename, JSON.stringify(body)).toBe('AuthPayload');
  return { email, userId: payload.user.id as string, accessToken: payload.accessToken as string };
}

// One database, shared by an app that does not trust proxies and one that does.
let database: DatabaseHandle;
let plain: TestApp;
let proxied: TestApp;
let plainServer: Listening;
let proxiedServer: Listening;

beforeAll(async () => {
  database = await openTestDatabase();
  plain = await createTestApp({}, database);
  proxied = await createTestApp({ TRUST_PROXY: 'true' }, database);
  plainServer = await listen(plain.app);
  proxiedServer = await listen(proxied.app);
});

afterAll(async () => {
  await plainServer?.close();
  await proxiedServer?.close();
  await database?.close();
});

async function sessionIpsOf(userId: string): Promise<(string | null)[]> {
  const rows = await database.db.select({ ip: sessions.ip }).from(sessions).where(eq(sessions.userId, userId));
  return rows.map((r) => r.ip);
}

describe('over a real HTTP port', () => {
  it('answers GET /health with 200', async () => {
    const response = await fetch(`${plainServer.url}/health`);
    expect(response.status).toBe(200);
  });

  it('answers GET /ready with 200 while the database answers', async () => {
    const response = await fetch(`${plainServer.url}/ready`);
    expect(response.status).toBe(200);
  });

  it('registers a user and reads it back with me', async () => {
    const { email, userId, accessToken } = await registerOverHttp(plainServer.url);
    const me = await post(plainServer.url, ME, {}, { authorization: `Bearer ${accessToken}` });
    expect(me.status).toBe(200);
    expect(me.body.errors).toBeUndefined();
    expect(me.body.data.me).toMatchObject({ id: userId, email, roles: ['user'], active: true });
  });

  it('answers me without a token with data.me null and one UNAUTHENTICATED error', async () => {
    const me = await post(plainServer.url, ME);
    expect(me.body.data).toEqual({ me: null });
    expect(me.body.errors).toHaveLength(1);
    expect(me.body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
  });

  it('serves GraphiQL on GET /graphql to a browser when enabled', async () => {
    const response = await fetch(`${plainServer.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/html');
    expect(await response.text()).toMatch(/graphiql/i);
  });

  it('does not serve GraphiQL when it is disabled', async () => {
    const app = createApp(plain.services, { config: { ...plain.config, graphiql: false }, ping: database.ping });
    const server = await listen(app);
    try {
      const response = await fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } });
      expect(response.headers.get('content-type') ?? '').not.toContain('text/html');
      expect(await response.text()).not.toMatch(/graphiql/i);
    } finally {
      await server.close();
    }
  });

  it('records the socket address on the session, not X-Forwarded-For, when TRUST_PROXY is unset', async () => {
    const { userId } = await registerOverHttp(plainServer.url, { 'x-forwarded-for': '203.0.113.9' });
    expect(await sessionIpsOf(userId)).toEqual(['127.0.0.1']);
  });

  it('records the X-Forwarded-For address on the session when TRUST_PROXY=true', async () => {
    const { userId } = await registerOverHttp(proxiedServer.url, { 'x-forwarded-for': '203.0.113.9' });
    expect(await sessionIpsOf(userId)).toEqual(['203.0.113.9']);
  });

  it('uses the last X-Forwarded-For entry (the one our proxy added) when TRUST_PROXY=true', async () => {
    const { userId } = await registerOverHttp(proxiedServer.url, { 'x-forwarded-for': '1.2.3.4, 203.0.113.9' });
    expect(await sessionIpsOf(userId)).toEqual(['203.0.113.9']);
  });

  it('falls back to the socket address when TRUST_PROXY=true and X-Forwarded-For is not an IP', async () => {
    const { userId } = await registerOverHttp(proxiedServer.url, { 'x-forwarded-for': 'not-an-ip' });
    expect(await sessionIpsOf(userId)).toEqual(['127.0.0.1']);
  });

  it('records the socket address when TRUST_PROXY=true and no X-Forwarded-For is sent', async () => {
    const { userId } = await registerOverHttp(proxiedServer.url);
    expect(await sessionIpsOf(userId)).toEqual(['127.0.0.1']);
  });

  it('records the user agent on the session', async () => {
    const { userId } = await registerOverHttp(plainServer.url, { 'user-agent': 'authgraph-test/1.0' });
    const rows = await database.db.select({ userAgent: sessions.userAgent }).from(sessions).where(eq(sessions.userId, userId));
    expect(rows).toEqual([{ userAgent: 'authgraph-test/1.0' }]);
  });
});

describe('readiness', () => {
  let own: DatabaseHandle;
  let closed = false;
  let server: Listening;

  beforeAll(async () => {
    own = await openTestDatabase();
    // The ping the server would use: a query on this database.
    const app = createApp(plain.services, { config: plain.config, ping: () => own.ping() });
    server = await listen(app);
  });

  afterAll(async () => {
    await server?.close();
    if (!closed) await own?.close();
  });

  it('answers GET /ready with 503 once the database is gone, while /health stays 200', async () => {
    expect((await fetch(`${server.url}/ready`)).status).toBe(200);
    await own.close();
    closed = true;
    expect((await fetch(`${server.url}/ready`)).status).toBe(503);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });
});
