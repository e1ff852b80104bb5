import argon2 from 'argon2';
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DatabaseHandle } from '../../src/db/client.js';
import { eventsFromIp, expectRejectedBeforeExecution, rawFetch, uniqueIp } from '../support/abuse.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { OWN_DATABASE_TIMEOUT, onPostgres, openTestDatabase } from '../support/database.js';
import { MAX_AUTHORIZATION_HEADER } from '../../src/plugins/use-request-limits.js';
import { GOOD_PASSWORD, LOGIN, ME, REFRESH, loginUser, registerUser } from '../support/operations.js';

// Production apps need a mail transport; nothing is sent in this file.
const PRODUCTION = { NODE_ENV: 'production', SMTP_URL: 'smtp://127.0.0.1:2525', RP_ID: 'app.example', RP_ORIGINS: 'https://app.example' };

let database: DatabaseHandle;
let t: TestApp; // development defaults
let prod: TestApp;
beforeAll(async () => {
  database = await openTestDatabase();
  t = await createTestApp({}, database);
  prod = await createTestApp(PRODUCTION, database);
});
afterAll(async () => {
  await database?.close();
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

const meWorks = async (app: TestApp, token: string) => (await app.gql(ME, {}, { token })).data?.me != null;

/** `n` aliased copies of a selection. */
const aliased = (n: number, selection: string) => Array.from({ length: n }, (_, i) => `a${i}: ${selection}`).join(' ');

describe('graphql-armor limits', () => {
  it('refuses an operation deeper than GRAPHQL_MAX_DEPTH before anything runs', async () => {
    const shallow = await createTestApp({ GRAPHQL_MAX_DEPTH: '2' }, database);
    const { email } = await registerUser(t);
    const ip = uniqueIp();
    const verify = vi.spyOn(argon2, 'verify');
    const res = await shallow.gql(
      `mutation Deep($input: LoginInput!) { login(input: $input) { ... on AuthPayload { user { id } } } }`,
      { input: { email, password: GOOD_PASSWORD } },
      { ip },
    );
    expectRejectedBeforeExecution(res, /depth limit of 2 exceeded/i);
    expect(verify).not.toHaveBeenCalled();
    expect(await eventsFromIp(shallow, ip)).toEqual([]);
    // Within the depth, the same mutation runs.
    const ok = await shallow.gql(`mutation Ok($input: LoginInput!) { login(input: $input) { __typename } }`, {
      input: { email, password: GOOD_PASSWORD },
    });
    expect(ok.data?.login.__typename).toBe('AuthPayload');
  });

  it('refuses an 11-level query under the default GRAPHQL_MAX_DEPTH (10)', async () => {
    const deep = `{ __type(name: "User") { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } } }`;
    const res = await t.gql(deep);
    expectRejectedBeforeExecution(res, /depth limit of 10 exceeded/i);
  });

  it('refuses 20 aliased `me` (over GRAPHQL_MAX_ALIASES, default 15)', async () => {
    const { accessToken } = await registerUser(t);
    const res = await t.gql(`{ ${aliased(20, 'me { id }')} }`, {}, { token: accessToken });
    expectRejectedBeforeExecution(res, /Aliases limit of 15 exceeded, found 20/);
    // 15 is allowed.
    const ok = await t.gql(`{ ${aliased(15, 'me { id }')} }`, {}, { token: accessToken });
    expect(ok.errors).toBeUndefined();
    expect(Object.keys(ok.data!)).toHaveLength(15);
  });

  it('executes nothing of an operation over the alias limit (16 aliased logout leave the token valid)', async () => {
    const { accessToken } = await registerUser(t);
    const res = await t.gql(`mutation { ${aliased(16, 'logout')} }`, {}, { token: accessToken });
    expectRejectedBeforeExecution(res, /Aliases limit of 15 exceeded/);
    expect(await meWorks(t, accessToken)).toBe(true);
  });

  it('follows GRAPHQL_MAX_ALIASES', async () => {
    const few = await createTestApp({ GRAPHQL_MAX_ALIASES: '2' }, database);
    const { accessToken } = await registerUser(few);
    const three = await few.gql(`{ ${aliased(3, 'me { id }')} }`, {}, { token: accessToken });
    expectRejectedBeforeExecution(three, /Aliases limit of 2 exceeded, found 3/);
    const two = await few.gql(`{ ${aliased(2, 'me { id }')} }`, {}, { token: accessToken });
    expect(two.errors).toBeUndefined();
    expect(Object.keys(two.data!)).toEqual(['a0', 'a1']);
  });

  it('refuses an operation of more than GRAPHQL_MAX_TOKENS (1000) tokens, executing nothing', async () => {
    const { accessToken } = await registerUser(t);
    const res = await t.gql(`mutation { logout ${'__typename '.repeat(1000)} }`, {}, { token: accessToken });
    expectRejectedBeforeExecution(res, /Token limit of 1000 exceeded/);
    expect(await meWorks(t, accessToken)).toBe(true);
  });

  it('refuses an operation of more than GRAPHQL_MAX_DIRECTIVES (20) directives, executing nothing', async () => {
    const { accessToken } = await registerUser(t);
    const res = await t.gql(
      `mutation { logout @include(if: true) ${'__typename @include(if: true) '.repeat(20)} }`,
      {},
      { token: accessToken },
    );
    expectRejectedBeforeExecution(res, /Directives limit of 20 exceeded, found 21/);
    expect(await meWorks(t, accessToken)).toBe(true);
  });

  it('refuses an operation over GRAPHQL_MAX_COST before anything runs', async () => {
    const cheap = await createTestApp({ GRAPHQL_MAX_COST: '20' }, database);
    const { email } = await registerUser(t);
    const ip = uniqueIp();
    const verify = vi.spyOn(argon2, 'verify');
    const res = await cheap.gql(
      `mutation Costly($input: LoginInput!) {
        login(input: $input) { __typename ... on AuthPayload { accessToken refreshToken user { id email name roles } } }
      }`,
      { input: { email, password: GOOD_PASSWORD } },
      { ip },
    );
    expectRejectedBeforeExecution(res, /Cost limit of 20 exceeded/i);
    expect(verify).not.toHaveBeenCalled();
    expect(await eventsFromIp(cheap, ip)).toEqual([]);
  });

  it('runs a normal client session (register, login, me, refresh, logout) under every default limit', async () => {
    const session = await registerUser(t);
    const login = await loginUser(t, session.email);
    const me = await t.gql(ME, {}, { token: login.accessToken });
    expect(me.errors).toBeUndefined();
    expect(me.data?.me).toMatchObject({ id: session.userId, email: session.email });
    const refreshed = await t.gql(REFRESH, { token: login.refreshToken });
    expect(refreshed.errors).toBeUndefined();
    expect(refreshed.data?.refresh.__typename).toBe('AuthPayload');
    const login2 = await t.gql(LOGIN, { input: { email: session.email, password: GOOD_PASSWORD } });
    expect(login2.errors).toBeUndefined();
  });
});

describe('production mode: introspection, suggestions, GraphiQL', () => {
  it('refuses introspection (__schema) in production', async () => {
    const res = await prod.gql(`{ __schema { types { name } } }`);
    expectRejectedBeforeExecution(res, /introspection has been disabled/);
    expect(res.errors![0]!.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('refuses __type in production too, but answers __typename', async () => {
    expectRejectedBeforeExecution(await prod.gql(`{ __type(name: "User") { name fields { name } } }`), /introspection/);
    expect(await prod.gql(`{ __typename }`)).toEqual({ status: 200, data: { __typename: 'Query' } });
  });

  it('allows introspection in production with INTROSPECTION=true', async () => {
    const open = await createTestApp({ ...PRODUCTION, INTROSPECTION: 'true' }, database);
    const res = await open.gql(`{ __schema { types { name } } }`);
    expect(res.errors).toBeUndefined();
    expect(res.data?.__schema.types.map((type: { name: string }) => type.name)).toContain('AuthPayload');
  });

  it('allows introspection outside production, and INTROSPECTION=false turns it off there', async () => {
    const res = await t.gql(`{ __schema { queryType { name } } }`);
    expect(res.data).toEqual({ __schema: { queryType: { name: 'Query' } } });
    const closed = await createTestApp({ INTROSPECTION: 'false' }, database);
    expectRejectedBeforeExecution(await closed.gql(`{ __schema { queryType { name } } }`), /introspection/);
  });

  it('hides field suggestions in production: a misspelled field gets an error without "Did you mean"', async () => {
    const res = await prod.gql(`{ mee { id } }`);
    expectRejectedBeforeExecution(res, /Cannot query field "mee" on type "Query"/);
    const text = JSON.stringify(res);
    expect(text).not.toMatch(/did you mean/i);
    expect(text).not.toContain('"me"');
  });

  it('hides every kind of suggestion in production (argument, type, input field, enum value)', async () => {
    const cases = [
      `mutation { login(inptu: { email: "a@b.c", password: "x" }) { __typename } }`,
      `mutation { login(input: { email: "a@b.c", password: "x" }) { ... on AuthPayloadd { accessToken } } }`,
      `mutation { login(input: { emial: "a@b.c", password: "x" }) { __typename } }`,
      `{ me { emial } }`,
    ];
    for (const query of cases) {
      const res = await prod.gql(query);
      expect(res.errors?.length, query).toBeGreaterThanOrEqual(1);
      expect(res.data, query).toBeUndefined();
      expect(JSON.stringify(res), query).not.toMatch(/did you mean/i);
    }
  });

  it('hides suggestions in production for a misspelled input field sent in variables (refused in coercion, not validation)', async () => {
    const query = `mutation ($i: LoginInput!) { login(input: $i) { __typename } }`;
    for (const i of [{ email: 'a@b.c', passwrd: 'x' }, { emial: 'a@b.c', password: 'x' }]) {
      const res = await prod.gql(query, { i });
      expect(res.status).toBe(400);
      expect(res.data).toBeUndefined();
      const messages = res.errors?.map((e) => e.message) ?? [];
      expect(messages.some((m) => /is not defined by type "LoginInput"\.$/.test(m)), JSON.stringify(messages)).toBe(true);
      expect(JSON.stringify(res)).not.toMatch(/did you mean/i);
    }
  });

  it('shows suggestions outside production', async () => {
    const res = await t.gql(`{ mee { id } }`);
    expect(res.errors?.[0]?.message).toBe('Cannot query field "mee" on type "Query". Did you mean "me"?');
    const coerced = await t.gql(`mutation ($i: LoginInput!) { login(input: $i) { __typename } }`, { i: { email: 'a@b.c', passwrd: 'x' } });
    expect(coerced.errors?.map((e) => e.message)).toContainEqual(
      'Variable "$i" got invalid value { email: "a@b.c", passwrd: "x" }; Field "passwrd" is not defined by type "LoginInput". Did you mean "password"?',
    );
  });

  it('serves no GraphiQL in production unless GRAPHIQL=true; development serves it', async () => {
    const html = { method: 'GET', headers: { accept: 'text/html' } };
    const off = await rawFetch(prod, '/graphql', html);
    expect(off.headers.get('content-type') ?? '').not.toContain('text/html');
    expect(off.text).not.toMatch(/graphiql/i);
    expect(off.status).not.toBe(200);

    const on = await rawFetch(await createTestApp({ ...PRODUCTION, GRAPHIQL: 'true' }, database), '/graphql', html);
    expect(on.status).toBe(200);
    expect(on.headers.get('content-type')).toContain('text/html');
    expect(on.text).toMatch(/graphiql/i);

    const dev = await rawFetch(t, '/graphql', html);
    expect(dev.status).toBe(200);
    expect(dev.headers.get('content-type')).toContain('text/html');

    const devOff = await rawFetch(await createTestApp({ GRAPHIQL: 'false' }, database), '/graphql', html);
    expect(devOff.headers.get('content-type') ?? '').not.toContain('text/html');
  });
});

describe('malformed JSON body', () => {
  it.each([
    ['no Accept header', {}],
    ['Accept: application/json', { accept: 'application/json' }],
    ['Accept: application/graphql-response+json', { accept: 'application/graphql-response+json' }],
  ])('answers 400 with a message and BAD_REQUEST, and no internal error name (%s)', async (_, accept) => {
    for (const app of [t, prod]) {
      const res = await app.app.fetch(
        'http://x/graphql',
        { method: 'POST', headers: { 'content-type': 'application/json', ...accept }, body: '{ nope' },
        { req: { socket: { remoteAddress: '1.1.1.1' } } },
      );
      expect(res.status).toBe(400);
      const body = await res.json();
      expect(body).toEqual({ errors: [{ message: 'POST body sent invalid JSON.', extensions: { code: 'BAD_REQUEST' } }] });
      expect(JSON.stringify(body)).not.toMatch(/SyntaxError|originalError/);
    }
  });
});

describe('malformed GET parameters', () => {
  it.each(['variables', 'extensions'])('answers 400, not 500, when %s is not valid JSON', async (name) => {
    const res = await rawFetch(t, `/graphql?query=${encodeURIComponent('{ __typename }')}&${name}=${encodeURIComponent('{bad')}`, {
      method: 'GET',
      headers: { accept: 'application/json', 'x-graphql-yoga-csrf': '1' },
    });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toEqual({
      errors: [{ message: `The ${name} parameter is not valid JSON.`, extensions: { code: 'BAD_REQUEST' } }],
    });
  });

  it('still answers a GET query whose variables are valid JSON', async () => {
    const res = await rawFetch(t, `/graphql?query=${encodeURIComponent('{ __typename }')}&variables=${encodeURIComponent('{}')}`, {
      method: 'GET',
      headers: { accept: 'application/json', 'x-graphql-yoga-csrf': '1' },
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ data: { __typename: 'Query' } });
  });
});

describe('CSRF prevention', () => {
  const logoutQuery = 'mutation { logout }';
  const CSRF_REFUSAL = {
    errors: [
      {
        message:
          'This request could come from another site: send it as application/json, or with an Authorization or x-graphql-yoga-csrf header.',
        extensions: { code: 'CSRF_REQUIRED' },
      },
    ],
  };
  const loginQuery = (email: string) => `mutation { login(input: { email: "${email}", password: "${GOOD_PASSWORD}" }) { __typename } }`;

  it('refuses a form-encoded login from another site (login CSRF): 403 CSRF_REQUIRED, no password checked, nothing recorded', async () => {
    const { email } = await registerUser(t);
    const ip = uniqueIp();
    const verify = vi.spyOn(argon2, 'verify');
    const body = new URLSearchParams({ query: loginQuery(email) }).toString();
    const res = await rawFetch(t, '/graphql', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body }, ip);
    expect(res.status).toBe(403);
    expect(JSON.parse(res.text)).toEqual(CSRF_REFUSAL);
    expect(verify).not.toHaveBeenCalled();
    expect(await eventsFromIp(t, ip)).toEqual([]);
  });

  it.each([
    ['text/plain', 'text/plain'],
    ['text/plain with parameters, in capitals', 'TEXT/Plain; charset=utf-8'],
    ['no content type', undefined],
    ['a content type no parser knows', 'application/x-unknown'],
    ['JSON only as a parameter', 'text/plain; type=application/json'],
  ])('refuses a POST with %s and no Authorization or CSRF header (403 CSRF_REQUIRED)', async (_label, contentType) => {
    const headers: Record<string, string> = contentType ? { 'content-type': contentType } : {};
    const res = await rawFetch(t, '/graphql', { method: 'POST', headers, body: JSON.stringify({ query: logoutQuery }) });
    expect(res.status).toBe(403);
    expect(JSON.parse(res.text)).toEqual(CSRF_REFUSAL);
  });

  it('refuses a multipart/form-data POST without the header (403 CSRF_REQUIRED)', async () => {
    const form = new FormData();
    form.set('operations', JSON.stringify({ query: '{ __typename }' }));
    form.set('map', '{}');
    const request = new Request('http://authgraph.test/graphql', { method: 'POST', body: form });
    const res = await rawFetch(t, '/graphql', {
      method: 'POST',
      headers: { 'content-type': request.headers.get('content-type')! },
      body: await request.arrayBuffer(),
    });
    expect(res.status).toBe(403);
    expect(JSON.parse(res.text)).toEqual(CSRF_REFUSAL);
  });

  it.each(['x-graphql-yoga-csrf', 'apollo-require-preflight', 'x-apollo-operation-name'])(
    'accepts a form-encoded POST carrying the %s header',
    async (header) => {
      const body = new URLSearchParams({ query: '{ __typename }' }).toString();
      const res = await rawFetch(t, '/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', [header]: '1' },
        body,
      });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.text)).toEqual({ data: { __typename: 'Query' } });
    },
  );

  it('accepts a form-encoded POST carrying Authorization (no page can send that without a preflight), and runs it', async () => {
    const session = await registerUser(t);
    const body = new URLSearchParams({ query: logoutQuery }).toString();
    const res = await rawFetch(t, '/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${session.accessToken}` },
      body,
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ data: { logout: true } });
    expect(await meWorks(t, session.accessToken)).toBe(false);
  });

  it('lets a text/plain POST with the header past CSRF prevention (then refused as an unsupported media type, 415)', async () => {
    const res = await rawFetch(t, '/graphql', {
      method: 'POST',
      headers: { 'content-type': 'text/plain', 'x-graphql-yoga-csrf': '1' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(res.status).toBe(415);
  });

  it('lets other JSON content types past CSRF prevention (yoga then answers 415: its parser reads application/json only)', async () => {
    for (const contentType of ['Application/JSON', 'application/graphql-response+json']) {
      const res = await rawFetch(t, '/graphql', { method: 'POST', headers: { 'content-type': contentType }, body: '{"query":"{ __typename }"}' });
      expect(res.status, contentType).toBe(415);
    }
  });

  it.each(['application/json', 'application/json; charset=utf-8'])(
    'accepts %s without any extra header',
    async (contentType) => {
      const res = await rawFetch(t, '/graphql', {
        method: 'POST',
        headers: { 'content-type': contentType },
        body: JSON.stringify({ query: '{ __typename }' }),
      });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.text)).toEqual({ data: { __typename: 'Query' } });
    },
  );

  it("answers a GET query with no extra header, as urql's default fetch sends it, with and without a token", async () => {
    const session = await registerUser(t);
    // What urql 5+ sends for a query: GET, the query in the URL, this Accept header and nothing else.
    const accept = 'application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed';
    const url = `/graphql?query=${encodeURIComponent('query Me { me { id } }')}&operationName=Me`;
    const anonymous = await rawFetch(t, url, { method: 'GET', headers: { accept } });
    expect(anonymous.status).toBe(200);
    expect(JSON.parse(anonymous.text).errors[0].extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'MISSING' });
    const signedIn = await rawFetch(t, url, { method: 'GET', headers: { accept, authorization: `Bearer ${session.accessToken}` } });
    expect(signedIn.status).toBe(200);
    expect(JSON.parse(signedIn.text)).toEqual({ data: { me: { id: session.userId } } });
  });

  it('refuses a mutation over GET, with or without headers (405, Allow: POST); nothing runs', async () => {
    const { accessToken } = await registerUser(t);
    const url = `/graphql?query=${encodeURIComponent('mutation{logout}')}`;
    const auth = { authorization: `Bearer ${accessToken}` };
    for (const headers of [{}, auth, { ...auth, 'x-graphql-yoga-csrf': '1' }] as Record<string, string>[]) {
      const res = await rawFetch(t, url, { method: 'GET', headers });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
      expect(JSON.parse(res.text).errors[0].message).toBe('Can only perform a mutation operation from a POST request.');
    }
    expect(await meWorks(t, accessToken)).toBe(true);
  });

  it('refuses a login over GET (no sign-in attempt through a link)', async () => {
    const { email } = await registerUser(t);
    const ip = uniqueIp();
    const verify = vi.spyOn(argon2, 'verify');
    const res = await rawFetch(t, `/graphql?query=${encodeURIComponent(loginQuery(email))}`, { method: 'GET' }, ip);
    expect(res.status).toBe(405);
    expect(verify).not.toHaveBeenCalled();
    expect(await eventsFromIp(t, ip)).toEqual([]);
  });
});

describe('request size limits', () => {
  const jsonPost = (body: string, headers: Record<string, string> = {}) => ({
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  /** A JSON body of exactly `size` bytes. */
  const bodyOf = (size: number) => {
    const base = JSON.stringify({ query: '{ __typename }', variables: { pad: '' } });
    return JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(size - base.length) } });
  };

  it('refuses a body over BODY_LIMIT (default 102400 bytes) with 413', async () => {
    const body = bodyOf(102_401);
    expect(Buffer.byteLength(body)).toBe(102_401);
    const res = await rawFetch(t, '/graphql', jsonPost(body));
    expect(res.status).toBe(413);
    expect(JSON.parse(res.text).errors[0].message).toBe('The request body exceeds 102400 bytes.');
  });

  it('accepts a body of exactly BODY_LIMIT bytes', async () => {
    const body = bodyOf(102_400);
    expect(Buffer.byteLength(body)).toBe(102_400);
    const res = await rawFetch(t, '/graphql', jsonPost(body));
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ data: { __typename: 'Query' } });
  });

  it('follows BODY_LIMIT', async () => {
    const small = await createTestApp({ BODY_LIMIT: '1000' }, database);
    expect((await rawFetch(small, '/graphql', jsonPost(bodyOf(1001)))).status).toBe(413);
    expect((await rawFetch(small, '/graphql', jsonPost(bodyOf(1000)))).status).toBe(200);
  });

  it('refuses a POST without Content-Length (a streamed body) with 411', async () => {
    const bytes = new TextEncoder().encode(JSON.stringify({ query: '{ __typename }' }));
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes);
        controller.close();
      },
    });
    const res = await rawFetch(t, '/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      duplex: 'half',
    });
    expect(res.status).toBe(411);
    expect(JSON.parse(res.text).errors[0].message).toBe('A Content-Length header is required.');
  });

  it('refuses an Authorization header longer than 16 KiB (431), before the body is parsed', async () => {
    const tooLong = `Bearer ${'a'.repeat(MAX_AUTHORIZATION_HEADER - 6)}`;
    expect(tooLong.length).toBe(MAX_AUTHORIZATION_HEADER + 1);
    // The body is not even JSON: the header is refused first.
    const res = await rawFetch(t, '/graphql', jsonPost('{ not json', { authorization: tooLong }));
    expect(res.status).toBe(431);
    expect(JSON.parse(res.text).errors[0].message).toBe('The Authorization header is too large.');
    // On GET too.
    const get = await rawFetch(t, '/graphql?query=%7B__typename%7D', {
      method: 'GET',
      headers: { authorization: tooLong, 'x-graphql-yoga-csrf': '1' },
    });
    expect(get.status).toBe(431);
  });

  it('refuses a token longer than 4096 characters unparsed, as UNAUTHENTICATED, and lets login through', async () => {
    const oversized = `Bearer ${'a'.repeat(4097)}`;
    const me = await t.gql(ME, {}, { headers: { authorization: oversized } });
    expect(me.status).toBe(200);
    expect(me.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const { email } = await registerUser(t);
    const login = await t.gql(LOGIN, { input: { email, password: GOOD_PASSWORD } }, { headers: { authorization: oversized } });
    expect(login.data?.login.__typename).toBe('AuthPayload');
  });
});

describe('errors are masked', () => {
  /** No stack frame, SQL or internal message in a body. */
  function expectNothingInternal(body: string, secrets: string[]) {
    for (const secret of secrets) expect(body).not.toContain(secret);
    expect(body).not.toMatch(/\bat .+\.(ts|js):\d+/);
    expect(body).not.toMatch(/stack/i);
    expect(body).not.toMatch(/originalError/);
    expect(body).not.toMatch(/\b(select|insert|update|delete)\b.+\b(from|into|set)\b/i);
  }

  /** Sends login to an app whose auth service fails with an error whose message looks like SQL. */
  async function loginThroughFailingService() {
    const app = await createTestApp({}, database);
    app.services.signIn.login = async () => {
      throw new Error('SELECT secret FROM x');
    };
    return rawFetch(app, '/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: LOGIN, variables: { input: { email: 'a@example.com', password: GOOD_PASSWORD } } }),
    });
  }

  it('answers "Unexpected error." for a failure inside a service, with no stack or SQL text', async () => {
    const res = await loginThroughFailingService();
    expect(res.status).toBe(200);
    const body = JSON.parse(res.text);
    expect(body.errors).toHaveLength(1);
    expect(body.errors[0]).toMatchObject({ message: 'Unexpected error.', path: ['login'], extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    expectNothingInternal(res.text, ['SELECT secret', 'secret FROM x']);
  });

  it('stays masked when NODE_ENV=development is set in the process environment', async () => {
    vi.stubEnv('NODE_ENV', 'development');
    const res = await loginThroughFailingService();
    expect(JSON.parse(res.text).errors[0].message).toBe('Unexpected error.');
    expectNothingInternal(res.text, ['SELECT secret', 'secret FROM x']);
  });

  it('masks a real SQL failure (a missing table) with no SQL text, table name or parameters', async () => {
    const broken = await openTestDatabase();
    try {
      const app = await createTestApp({}, broken);
      const { email } = await registerUser(app);
      await broken.db.execute(sql`drop table refresh_tokens cascade`);
      const res = await rawFetch(app, '/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: LOGIN, variables: { input: { email, password: GOOD_PASSWORD } } }),
      });
      const body = JSON.parse(res.text);
      expect(body.errors?.[0]?.message).toBe('Unexpected error.');
      expectNothingInternal(res.text, ['refresh_tokens', 'Failed query', 'relation', 'does not exist', email]);
    } finally {
      await broken.close();
    }
  }, OWN_DATABASE_TIMEOUT);

  it('masks the failure of a closed database handle, and /ready answers 503', async () => {
    const closing = await openTestDatabase();
    const app = await createTestApp({}, closing);
    const { email, accessToken } = await registerUser(app);
    await closing.close();
    // A closed postgres.js pool is a database outage (retry later: SERVICE_UNAVAILABLE, see
    // database-faults.test.ts); a closed PGlite is a fault of this process, masked as any other.
    const expected = onPostgres ? 'The service is temporarily unavailable. Try again shortly.' : 'Unexpected error.';
    const login = await rawFetch(app, '/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: LOGIN, variables: { input: { email, password: GOOD_PASSWORD } } }),
    });
    expect(JSON.parse(login.text).errors?.[0]?.message).toBe(expected);
    expectNothingInternal(login.text, [email, 'closed', 'ended']);
    const me = await app.gql(ME, {}, { token: accessToken });
    expect(me.errors?.[0]?.message).toBe(expected);
    expectNothingInternal(JSON.stringify(me), ['closed', 'ended']);
    const ready = await rawFetch(app, '/ready');
    expect(ready.status).toBe(503);
  }, OWN_DATABASE_TIMEOUT);
});
