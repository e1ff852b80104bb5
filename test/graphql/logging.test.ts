import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DatabaseHandle } from '../../src/db/client.js';
import { createLogger } from '../../src/logger.js';
import { rawFetch, uniqueIp } from '../support/abuse.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { openTestDatabase } from '../support/database.js';
import { GOOD_PASSWORD, LOGIN, LOGOUT, ME, REFRESH, REGISTER, uniqueEmail } from '../support/operations.js';

// Every pino logger the app builds (through src/logger.ts's createLogger, with its real options
// and redaction) writes into `lines` instead of stdout.
const captured = vi.hoisted(() => ({ lines: [] as string[] }));
vi.mock('pino', async (importOriginal) => {
  const actual = await importOriginal<typeof import('pino')>();
  const sink = { write: (line: string) => void captured.lines.push(line) };
  const pino = Object.assign((options?: Parameters<typeof actual.pino>[0]) => actual.pino(options ?? {}, sink), actual.pino);
  return { ...actual, pino, default: pino };
});

const WRONG = 'Wrong-Horse-Battery-77';
const BAD_AUTHORIZATION = 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged-signature-value-123456';

let database: DatabaseHandle;
beforeAll(async () => {
  database = await openTestDatabase();
});
afterAll(async () => {
  await database?.close();
});
beforeEach(() => {
  captured.lines.length = 0;
});

/** The captured lines, each parsed as JSON (a test fails on any line that is not). */
function logLines(): Array<Record<string, any>> {
  return captured.lines.flatMap((chunk) =>
    chunk
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        try {
          return JSON.parse(line) as Record<string, any>;
        } catch {
          throw new Error(`log line is not JSON: ${line}`);
        }
      }),
  );
}

/**
 * Runs register, a login with a wrong password, a login, a refresh and a logout, each request
 * carrying a forged Authorization header where it may; returns every secret involved.
 */
async function runFlows(t: TestApp): Promise<string[]> {
  const email = uniqueEmail('log');
  const ip = uniqueIp();
  const bad = { ip, headers: { authorization: BAD_AUTHORIZATION, 'user-agent': 'LogTest/1.0' } };
  const reg = await t.gql(REGISTER, { input: { email, password: GOOD_PASSWORD } }, bad);
  expect(reg.data?.register.__typename).toBe('AuthPayload');
  const wrong = await t.gql(LOGIN, { input: { email, password: WRONG } }, bad);
  expect(wrong.data?.login.__typename).toBe('InvalidCredentialsError');
  const login = await t.gql(LOGIN, { input: { email, password: GOOD_PASSWORD } }, bad);
  expect(login.data?.login.__typename).toBe('AuthPayload');
  const refreshed = await t.gql(REFRESH, { token: login.data!.login.refreshToken }, bad);
  expect(refreshed.data?.refresh.__typename).toBe('AuthPayload');
  // me with the forged header: refused, and logged (at debug) without the header's value.
  const me = await t.gql(ME, {}, bad);
  expect(me.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  const out = await t.gql(LOGOUT, {}, { ip, token: refreshed.data!.refresh.accessToken });
  expect(out.data?.logout).toBe(true);
  return [
    GOOD_PASSWORD,
    WRONG,
    BAD_AUTHORIZATION,
    BAD_AUTHORIZATION.slice('Bearer '.length),
    'forged-signature-value-123456',
    reg.data!.register.accessToken,
    reg.data!.register.refreshToken,
    login.data!.login.accessToken,
    login.data!.login.refreshToken,
    refreshed.data!.refresh.accessToken,
    refreshed.data!.refresh.refreshToken,
    // The secret half of each refresh token and the signature of each access token.
    ...[reg.data!.register, login.data!.login, refreshed.data!.refresh].flatMap((p) => [
      p.refreshToken.split('.').at(-1),
      p.accessToken.split('.').at(-1),
    ]),
  ];
}

function expectNoSecretIn(lines: string[], secrets: string[]) {
  const text = lines.join('');
  for (const secret of secrets) expect(text.includes(secret), `a secret (${secret.slice(0, 12)}…) is in the log`).toBe(false);
}

describe('structured logs', () => {
  it('writes a JSON line with an `event` field for register, login (success and failure), refresh and logout', async () => {
    const t = await createTestApp({ LOG_LEVEL: 'info' }, database);
    await runFlows(t);
    const lines = logLines();
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).toMatchObject({ level: expect.any(Number), time: expect.any(Number), msg: expect.any(String) });
    const events = lines.filter((l) => typeof l.event === 'string').map((l) => l.event);
    expect(events).toEqual(['register', 'login_failure', 'login_success', 'refresh', 'logout']);
    const failure = lines.find((l) => l.event === 'login_failure')!;
    expect(failure).toMatchObject({ level: 40, detail: { reason: 'wrong_password' } });
    expect(lines.find((l) => l.event === 'register')).toMatchObject({ level: 30, userId: expect.any(String), ip: expect.any(String) });
  });

  it('never writes a password, an access or refresh token or an Authorization header value (LOG_LEVEL=info)', async () => {
    const t = await createTestApp({ LOG_LEVEL: 'info' }, database);
    const secrets = await runFlows(t);
    expect(captured.lines.length).toBeGreaterThan(0);
    expectNoSecretIn(captured.lines, secrets);
  });

  it('never writes them at LOG_LEVEL=debug either', async () => {
    const t = await createTestApp({ LOG_LEVEL: 'debug' }, database);
    const secrets = await runFlows(t);
    expect(logLines().some((l) => l.level === 20)).toBe(true);
    expectNoSecretIn(captured.lines, secrets);
  });

  it('logs an unexpected failure (for the operator) without the password, Authorization header or email of the request', async () => {
    const t = await createTestApp({ LOG_LEVEL: 'info' }, database);
    t.services.signIn.login = async (input) => {
      throw new Error(`boom for ${input.email}`);
    };
    const res = await rawFetch(t, '/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: BAD_AUTHORIZATION },
      body: JSON.stringify({ query: LOGIN, variables: { input: { email: 'x@example.com', password: WRONG } } }),
    });
    expect(JSON.parse(res.text).errors[0].message).toBe('Unexpected error.');
    const lines = logLines();
    expect(lines.some((l) => l.level >= 50 && JSON.stringify(l).includes('boom for [email]'))).toBe(true);
    expectNoSecretIn(captured.lines, [WRONG, BAD_AUTHORIZATION, 'forged-signature-value-123456', 'x@example.com']);
  });

  it('logs an unexpected failure without the password even when it is written inline in the operation', async () => {
    const t = await createTestApp({ LOG_LEVEL: 'info' }, database);
    t.services.signIn.login = async () => {
      throw new Error('boom');
    };
    const res = await t.gql(`mutation { login(input: { email: "x@example.com", password: "${WRONG}" }) { __typename } }`);
    expect(res.errors?.[0]?.message).toBe('Unexpected error.');
    expect(logLines().some((l) => l.level >= 50)).toBe(true);
    expectNoSecretIn(captured.lines, [WRONG]);
  });

  it('redacts credentials by path when code logs them by mistake', () => {
    const logger = createLogger('info');
    logger.info(
      {
        password: 'p1-secret',
        token: 't1-secret',
        accessToken: 'a1-secret',
        refreshToken: 'r1-secret',
        authorization: 'Bearer h1-secret',
        input: { password: 'p2-secret', refreshToken: 'r2-secret' },
        req: { headers: { authorization: 'Bearer h2-secret' } },
      },
      'oops',
    );
    const [line] = logLines();
    expect(line).toMatchObject({ msg: 'oops', password: '[redacted]', input: { password: '[redacted]' } });
    expectNoSecretIn(captured.lines, ['p1-secret', 't1-secret', 'a1-secret', 'r1-secret', 'h1-secret', 'p2-secret', 'r2-secret', 'h2-secret']);
  });
});

const REFUSED_NAME = 'refused-by-a-check-constraint';

/** While `work` runs, the database itself refuses to store a user named REFUSED_NAME (a CHECK constraint). */
async function withRefusedName(work: () => Promise<void>) {
  await database.db.execute(
    sql.raw(`alter table users add constraint log_test_refused_name check (name is distinct from '${REFUSED_NAME}')`),
  );
  try {
    await work();
  } finally {
    await database.db.execute(sql.raw('alter table users drop constraint log_test_refused_name'));
  }
}

describe('failed queries in the log', () => {
  it('logs a failed insert with its SQL, PostgreSQL code and constraint, but none of its parameters (email, argon2 hash)', async () => {
    const t = await createTestApp({ LOG_LEVEL: 'info' }, database);
    const email = uniqueEmail('leak');
    await withRefusedName(async () => {
      const res = await t.gql(REGISTER, { input: { email, password: GOOD_PASSWORD, name: REFUSED_NAME } });
      expect(res.errors?.[0]?.message).toBe('Unexpected error.');
    });
    const failures = logLines().filter((l) => l.level >= 50);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({
      err: {
        message: expect.stringMatching(/^Failed query: insert into "users"/),
        query: expect.stringMatching(/^insert into "users"/),
        cause: { code: '23514', constraint: 'log_test_refused_name' },
      },
    });
    expectNoSecretIn(captured.lines, [email, '$argon2id$', GOOD_PASSWORD, REFUSED_NAME]);
    expect(captured.lines.join('')).not.toMatch(/params/i);
  });

  it('masks a bound value that the database quotes in its own message', async () => {
    const email = uniqueEmail('quoted');
    const err = await database.db.execute(sql`select ${email}::uuid`).then(
      () => expect.fail('the cast should fail'),
      (e: unknown) => e,
    );
    createLogger('info').error({ err }, 'query failed');
    const [line] = logLines();
    expect(line).toMatchObject({ msg: 'query failed', err: { cause: { code: '22P02' } } });
    expect(line!.err.cause.message).toMatch(/invalid input syntax for type uuid/);
    expectNoSecretIn(captured.lines, [email]);
  });

  it('keeps no parameter, detail or query values a driver error carries as properties, nor an email, hash or JWT in a message', () => {
    const hash = '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo';
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
    const err = Object.assign(new Error(`could not sign in p1@example.com with ${hash} or ${jwt}`), {
      code: '23505',
      parameters: ['p2@example.com', 'bound-secret-value'],
      params: ['p3@example.com'],
      detail: 'Key (email)=(p4@example.com) already exists.',
    });
    const logger = createLogger('info');
    logger.error(err);
    logger.warn({ failure: err, err: new Error('wrapped', { cause: err }) }, 'two errors');
    const lines = logLines();
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ err: { code: '23505' } });
    expectNoSecretIn(captured.lines, ['@example.com', '$argon2', jwt, 'bound-secret-value', 'p4@']);
  });
});
