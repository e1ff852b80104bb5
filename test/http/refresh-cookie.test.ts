/**
 * REFRESH_TOKEN_TRANSPORT=cookie|both over a real HTTP port, as a browser app (and an attacker's
 * page) would meet it: the cookie's attributes, rotation and replay through it, logout and
 * every dead session clearing it, CORS credentials and CSRF.
 */
import { parseSetCookie, type SetCookie } from 'cookie';
import { getNamedType, isUnionType } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../../src/db/client.js';
import { schema } from '../../src/graphql/schema.js';
import { CHANGE_PASSWORD, NEW_PASSWORD, RESET_PASSWORD, REVOKE_SESSION, requestResetToken, sessionIdOf } from '../support/account.js';
import { eventsOfUser } from '../support/abuse.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { openTestDatabase } from '../support/database.js';
import { listen, type Listening } from '../support/listen.js';
import { GOOD_PASSWORD, LOGIN, LOGOUT, ME_ID, REFRESH, uniqueEmail } from '../support/operations.js';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.js';
import { COMPLETE_SIGN_IN, CONFIRM_TOTP, ENROLL_TOTP, LOGIN_2FA, totpCode, verifyAddressOf } from '../factors/support.js';

const APP_ORIGIN = 'https://app.example';
const EVIL_ORIGIN = 'https://evil.example';
const HOST_COOKIE = '__Host-authgraph_refresh';
const DEV_COOKIE = 'authgraph_refresh';
const GRACE = 10;
const REGISTER = `mutation Register($input: RegisterInput!) {
  register(input: $input) {
    __typename
    ... on AuthPayload { accessToken refreshToken refreshExpiresIn refreshTokenExpiresAt user { id } }
    ... on Error { code message }
  }
}`;

/** An app on a port, with its test handle. */
interface Served {
  t: TestApp;
  server: Listening;
}

let database: DatabaseHandle;
let smtp: TestSmtpServer;
let cookieMode: Served; // production, REFRESH_TOKEN_TRANSPORT=cookie, CORS_ORIGINS=APP_ORIGIN
let bothMode: Served; // production, both, CORS_ORIGINS=APP_ORIGIN
let bodyMode: Served; // production, body (the default), CORS_ORIGINS=APP_ORIGIN
let devCookie: Served; // development, cookie, PUBLIC_URL unset (http://127.0.0.1:4000), CORS_ORIGINS unset (*)
const opened: Served[] = [];

async function serve(env: Record<string, string>): Promise<Served> {
  const t = await createTestApp(env, database);
  const served = { t, server: await listen(t.app) };
  opened.push(served);
  return served;
}

beforeAll(async () => {
  database = await openTestDatabase();
  smtp = await startSmtpServer();
  const production = { NODE_ENV: 'production', SMTP_URL: smtp.url, CORS_ORIGINS: APP_ORIGIN, RP_ID: new URL(APP_ORIGIN).hostname, RP_ORIGINS: APP_ORIGIN, REFRESH_REUSE_GRACE: String(GRACE) };
  cookieMode = await serve({ ...production, REFRESH_TOKEN_TRANSPORT: 'cookie' });
  bothMode = await serve({ ...production, REFRESH_TOKEN_TRANSPORT: 'both' });
  bodyMode = await serve(production);
  devCookie = await serve({ REFRESH_TOKEN_TRANSPORT: 'cookie' });
});
afterAll(async () => {
  for (const { t, server } of opened) {
    await server.close();
    await t.close();
  }
  await smtp?.close();
  await database?.close();
});

interface Answer {
  status: number;
  body: any;
  headers: Headers;
  /** Every Set-Cookie of the response. */
  setCookies: string[];
}

interface SendOptions {
  /** The Cookie header, as a browser holding the cookie sends it. */
  cookie?: string;
  bearer?: string;
  origin?: string;
  headers?: Record<string, string>;
}

/** POSTs one operation as JSON to a served app. */
async function send(on: Served, query: string, variables: Record<string, unknown> = {}, options: SendOptions = {}): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
  if (options.cookie) headers.cookie = options.cookie;
  if (options.bearer) headers.authorization = `Bearer ${options.bearer}`;
  if (options.origin) headers.origin = options.origin;
  return answerOf(await fetch(`${on.server.url}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query, variables }) }));
}

async function answerOf(response: Response): Promise<Answer> {
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null, headers: response.headers, setCookies: response.headers.getSetCookie() };
}

/** The one Set-Cookie of an answer, parsed. */
function cookieSet(answer: Answer): SetCookie {
  expect(answer.setCookies, 'exactly one Set-Cookie').toHaveLength(1);
  return parseSetCookie(answer.setCookies[0]!);
}

/** The Cookie header a browser sends back after this Set-Cookie. */
const cookieHeader = (cookie: SetCookie) => `${cookie.name}=${cookie.value}`;

/** The answer clears the cookie: same name and attributes, empty value, Max-Age=0. */
function expectCleared(answer: Answer, name = HOST_COOKIE, secure = true) {
  expect(cookieSet(answer)).toEqual({ name, value: '', maxAge: 0, path: '/', httpOnly: true, sameSite: 'strict', ...(secure ? { secure } : {}) });
}

/** Signs a new user up on `on`; returns the register answer and the cookie it set. */
async function signUp(on: Served, origin?: string) {
  const email = uniqueEmail('cookie');
  const answer = await send(on, REGISTER, { input: { email, password: GOOD_PASSWORD } }, { origin });
  expect(answer.body.data.register.__typename, JSON.stringify(answer.body)).toBe('AuthPayload');
  return { email, answer, payload: answer.body.data.register, cookie: answer.setCookies.length ? cookieSet(answer) : undefined };
}

/** Refreshes through the cookie alone (no argument). */
const refreshWithCookie = (on: Served, cookie: SetCookie | string, origin?: string) =>
  send(on, REFRESH, {}, { cookie: typeof cookie === 'string' ? cookie : cookieHeader(cookie), origin });

describe('the cookie', () => {
  it('is __Host-authgraph_refresh, HttpOnly, Secure, SameSite=Strict, Path=/, Max-Age = seconds until refreshTokenExpiresAt', async () => {
    const { answer, payload } = await signUp(cookieMode);
    const raw = answer.setCookies[0]!;
    const cookie = cookieSet(answer);
    expect(cookie.name).toBe(HOST_COOKIE);
    expect(cookie.value).toMatch(/^[\w-]+\.[\w-]+$/);
    expect(cookie.httpOnly).toBe(true);
    expect(cookie.secure).toBe(true);
    expect(cookie.sameSite).toBe('strict');
    expect(cookie.path).toBe('/');
    const secondsLeft = Math.floor((Date.parse(payload.refreshTokenExpiresAt) - cookieMode.t.clock.now().getTime()) / 1000);
    expect(cookie.maxAge).toBe(secondsLeft);
    expect(cookie.maxAge).toBe(payload.refreshExpiresIn);
    // Host-only: a Domain attribute would let sibling subdomains read it (and __Host- forbids it).
    expect(cookie.domain).toBeUndefined();
    expect(raw).not.toMatch(/domain=/i);
  });

  it('is the refresh token itself: spending it from the body of a both-mode answer works the same', async () => {
    const { cookie, payload } = await signUp(bothMode);
    expect(payload.refreshToken).toBe(cookie!.value);
    const res = await send(bothMode, REFRESH, { token: payload.refreshToken });
    expect(res.body.data.refresh.__typename).toBe('AuthPayload');
  });

  it('is set by every answer that issues a refresh token: register, login, refresh, changePassword, resetPassword', async () => {
    const { email, cookie, payload } = await signUp(cookieMode);
    const login = await send(cookieMode, LOGIN, { input: { email, password: GOOD_PASSWORD } });
    const refresh = await refreshWithCookie(cookieMode, cookie!);
    const change = await send(cookieMode, CHANGE_PASSWORD, { current: GOOD_PASSWORD, next: NEW_PASSWORD }, { bearer: payload.accessToken });
    const token = await requestResetToken(cookieMode.t, smtp, email);
    const reset = await send(cookieMode, RESET_PASSWORD, { token, password: GOOD_PASSWORD });
    const answers = { login, refresh, changePassword: change, resetPassword: reset };
    for (const [field, answer] of Object.entries(answers)) {
      expect(answer.body.data[field].__typename, `${field}: ${JSON.stringify(answer.body)}`).toBe('AuthPayload');
      const set = cookieSet(answer);
      expect(set.name, field).toBe(HOST_COOKIE);
      expect(set.maxAge, field).toBeGreaterThan(0);
      // Each one is a working refresh token of the session that answer opened.
      expect(set.value, field).not.toBe(cookie!.value);
    }
    expect((await refreshWithCookie(cookieMode, cookieSet(reset))).body.data.refresh.__typename).toBe('AuthPayload');
  });

  it('is set by completeSignIn, which finishes a login stopped at the second factor (and not by that login)', async () => {
    const { email, payload } = await signUp(cookieMode);
    await verifyAddressOf(cookieMode.t, payload.accessToken); // adding a factor needs a verified address
    const { secret } = (await send(cookieMode, ENROLL_TOTP, {}, { bearer: payload.accessToken })).body.data.enrollTotp;
    const confirmed = await send(cookieMode, CONFIRM_TOTP, { code: totpCode(secret, cookieMode.t.clock.now()) }, { bearer: payload.accessToken });
    expect(confirmed.body.data.confirmTotp.__typename, JSON.stringify(confirmed.body)).toBe('RecoveryCodes');
    const halfway = await send(cookieMode, LOGIN_2FA, { input: { email, password: GOOD_PASSWORD } });
    expect(halfway.body.data.login.__typename).toBe('SecondFactorRequired');
    expect(halfway.setCookies).toEqual([]);
    const { challenge } = halfway.body.data.login;
    const completed = await send(cookieMode, COMPLETE_SIGN_IN, { challenge, code: confirmed.body.data.confirmTotp.codes[0] });
    expect(completed.body.data.completeSignIn.__typename, JSON.stringify(completed.body)).toBe('AuthPayload');
    expect(completed.body.data.completeSignIn.refreshToken).toBeNull();
    const set = cookieSet(completed);
    expect(set.name).toBe(HOST_COOKIE);
    expect(set.maxAge).toBeGreaterThan(0);
    expect((await refreshWithCookie(cookieMode, set)).body.data.refresh.__typename).toBe('AuthPayload');
  });

  it('covers every field that can answer an AuthPayload (a new one must set the cookie, and join the test above)', () => {
    const producers = Object.values(schema.getMutationType()!.getFields())
      .filter((field) => {
        const type = getNamedType(field.type);
        const members = isUnionType(type) ? type.getTypes() : [type];
        return members.some((member) => member.name === 'AuthPayload');
      })
      .map((field) => field.name);
    // completeSocialSignIn's cookie is checked in test/graphql/social-sign-in.test.ts (it needs an OpenID Provider),
    // finishPasskeySignIn's in test/factors/passkey-sign-in.test.ts (it needs an authenticator).
    expect(producers.sort()).toEqual(['changePassword', 'completeSignIn', 'completeSocialSignIn', 'finishPasskeySignIn', 'login', 'refresh', 'register', 'resetPassword']);
    expect(Object.values(schema.getQueryType()!.getFields()).filter((f) => getNamedType(f.type).name === 'AuthPayload')).toEqual([]);
  });

  it('is not set by an answer that issues no token (a failed login, a query)', async () => {
    const { email, cookie } = await signUp(cookieMode);
    const failed = await send(cookieMode, LOGIN, { input: { email, password: 'wrong-Password-1' } });
    expect(failed.body.data.login.__typename).toBe('InvalidCredentialsError');
    expect(failed.setCookies).toEqual([]);
    expect((await send(cookieMode, '{ __typename }', {}, { cookie: cookieHeader(cookie!) })).setCookies).toEqual([]);
  });
});

describe('the body', () => {
  it('omits refreshToken (null) in cookie mode, and keeps everything else', async () => {
    const { payload } = await signUp(cookieMode);
    expect(payload.refreshToken).toBeNull();
    expect(payload.accessToken).toEqual(expect.any(String));
    expect(payload.refreshExpiresIn).toBeGreaterThan(0);
  });

  it('keeps refreshToken in both mode (the cookie carries the same token) and in body mode (no cookie at all)', async () => {
    const both = await signUp(bothMode);
    expect(both.payload.refreshToken).toBe(both.cookie!.value);
    const body = await signUp(bodyMode);
    expect(body.payload.refreshToken).toMatch(/^[\w-]+\.[\w-]+$/);
    expect(body.answer.setCookies).toEqual([]);
  });

  it('in body mode, the cookie is ignored: refresh without an argument answers missing and sets nothing', async () => {
    const { payload } = await signUp(bodyMode);
    const res = await refreshWithCookie(bodyMode, `${HOST_COOKIE}=${payload.refreshToken}`);
    expect(res.body.data.refresh).toMatchObject({ __typename: 'InvalidRefreshTokenError', code: 'INVALID_REFRESH_TOKEN' });
    expect(res.setCookies).toEqual([]);
  });
});

describe('refresh through the cookie', () => {
  it('rotates: the answer sets the successor, which refreshes in turn; the new access token works', async () => {
    const { cookie } = await signUp(cookieMode);
    const first = await refreshWithCookie(cookieMode, cookie!);
    expect(first.body.data.refresh.__typename).toBe('AuthPayload');
    expect(first.body.data.refresh.refreshToken).toBeNull();
    const successor = cookieSet(first);
    expect(successor.value).not.toBe(cookie!.value);
    const me = await send(cookieMode, ME_ID, {}, { bearer: first.body.data.refresh.accessToken });
    expect(me.body.data.me.id).toBe(first.body.data.refresh.user.id);
    const second = await refreshWithCookie(cookieMode, successor);
    expect(second.body.data.refresh.__typename).toBe('AuthPayload');
    expect(cookieSet(second).value).not.toBe(successor.value);
  });

  it('without a cookie and without an argument answers InvalidRefreshTokenError and sets no cookie', async () => {
    const res = await send(cookieMode, REFRESH);
    expect(res.body.data.refresh.__typename).toBe('InvalidRefreshTokenError');
    expect(res.setCookies).toEqual([]);
  });

  it("gives the argument precedence over the cookie: the argument is spent, another live session's cookie left as it was", async () => {
    const a = await signUp(bothMode);
    const b = await signUp(bothMode);
    const res = await send(bothMode, REFRESH, { token: b.payload.refreshToken }, { cookie: cookieHeader(a.cookie!) });
    expect(res.body.data.refresh.user.id).toBe(b.payload.user.id);
    // b's successor is in the body only: overwriting the cookie would sign this browser out of a's session.
    expect(res.body.data.refresh.refreshToken).toMatch(/^[\w-]+\.[\w-]+$/);
    expect(res.setCookies).toEqual([]);
    // a's token was not spent: it still rotates.
    expect((await refreshWithCookie(bothMode, a.cookie!)).body.data.refresh.user.id).toBe(a.payload.user.id);
  });

  it("sets the argument's successor when the cookie is of the same session, or of a session that is over", async () => {
    const a = await signUp(bothMode);
    const same = await send(bothMode, REFRESH, { token: a.payload.refreshToken }, { cookie: cookieHeader(a.cookie!) });
    expect(cookieSet(same).value).toBe(same.body.data.refresh.refreshToken);
    // The cookie still holds a's first (now spent) token: the same session, so its successor replaces it.
    bothMode.t.clock.advance(GRACE + 1);
    const spentCookie = await send(bothMode, REFRESH, { token: same.body.data.refresh.refreshToken }, { cookie: cookieHeader(a.cookie!) });
    expect(cookieSet(spentCookie).value).toBe(spentCookie.body.data.refresh.refreshToken);
    const dead = await signUp(bothMode);
    await send(bothMode, LOGOUT, { token: dead.payload.refreshToken });
    const b = await signUp(bothMode);
    const overDead = await send(bothMode, REFRESH, { token: b.payload.refreshToken }, { cookie: cookieHeader(dead.cookie!) });
    expect(cookieSet(overDead).value).toBe(overDead.body.data.refresh.refreshToken);
  });

  // The cookie is one more source of the same string: every rule of rotation holds alike.
  describe.each([
    ['the cookie', (token: string) => ({ variables: {}, options: { cookie: `${HOST_COOKIE}=${token}` } })],
    ['the argument', (token: string) => ({ variables: { token }, options: {} })],
  ] as const)('presented through %s (both mode)', (_label, present) => {
    async function refreshVia(token: string) {
      const { variables, options } = present(token);
      const res = await send(bothMode, REFRESH, variables, options);
      return { res, result: res.body.data.refresh };
    }

    it('a retry within REFRESH_REUSE_GRACE gets the same successor, in the body and the cookie', async () => {
      const { payload } = await signUp(bothMode);
      const first = await refreshVia(payload.refreshToken);
      bothMode.t.clock.advance(GRACE - 1);
      const retry = await refreshVia(payload.refreshToken);
      expect(retry.result.refreshToken).toBe(first.result.refreshToken);
      expect(cookieSet(retry.res).value).toBe(cookieSet(first.res).value);
    });

    it('a replay after the grace window revokes the session and is audited; a replayed cookie is cleared', async () => {
      const { payload } = await signUp(bothMode);
      const first = await refreshVia(payload.refreshToken);
      const successor = first.result.refreshToken;
      bothMode.t.clock.advance(GRACE + 1);
      const replay = await refreshVia(payload.refreshToken);
      expect(replay.result).toMatchObject({ __typename: 'InvalidRefreshTokenError', code: 'INVALID_REFRESH_TOKEN' });
      if (_label === 'the cookie') expectCleared(replay.res);
      else expect(replay.res.setCookies).toEqual([]);
      // The whole session is gone: its live successor and its access token.
      const after = await refreshVia(successor);
      expect(after.result.__typename).toBe('InvalidRefreshTokenError');
      const me = await send(bothMode, ME_ID, {}, { bearer: first.result.accessToken });
      expect(me.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      const events = await eventsOfUser(bothMode.t, payload.user.id);
      expect(events.filter((e) => e.type === 'refresh_reuse_detected')).toHaveLength(1);
    });
  });
});

describe('a dead session clears the cookie', () => {
  it('revoked (revokeSession): refresh through the cookie answers InvalidRefreshTokenError and clears it', async () => {
    const { cookie, payload } = await signUp(cookieMode);
    const revoke = await send(
      cookieMode,
      REVOKE_SESSION,
      { id: sessionIdOf(payload.accessToken) },
      { bearer: payload.accessToken, cookie: cookieHeader(cookie!) },
    );
    expect(revoke.body.data.revokeSession).toBe(true);
    expectCleared(revoke); // the cookie's own session: the answer clears the cookie at once
    const res = await refreshWithCookie(cookieMode, cookie!);
    expect(res.body.data.refresh.__typename).toBe('InvalidRefreshTokenError');
    expectCleared(res);
  });

  it("revokeSession keeps a cookie of another live session (both mode), even when revoking the access token's own session", async () => {
    const mine = await signUp(bothMode);
    const login = await send(bothMode, LOGIN, { input: { email: mine.email, password: GOOD_PASSWORD } });
    const app = login.body.data.login; // a second session of the same user, held by a native app
    const revoke = await send(
      bothMode,
      REVOKE_SESSION,
      { id: sessionIdOf(app.accessToken) },
      { bearer: app.accessToken, cookie: cookieHeader(mine.cookie!) },
    );
    expect(revoke.body.data.revokeSession).toBe(true);
    expect(revoke.setCookies).toEqual([]);
    expect((await refreshWithCookie(bothMode, mine.cookie!)).body.data.refresh.__typename).toBe('AuthPayload');
  });

  it("revokeSession of the cookie's session clears it though the access token is of another session (both mode)", async () => {
    const mine = await signUp(bothMode);
    const login = await send(bothMode, LOGIN, { input: { email: mine.email, password: GOOD_PASSWORD } });
    const revoke = await send(
      bothMode,
      REVOKE_SESSION,
      { id: sessionIdOf(mine.payload.accessToken) },
      { bearer: login.body.data.login.accessToken, cookie: cookieHeader(mine.cookie!) },
    );
    expect(revoke.body.data.revokeSession).toBe(true);
    expectCleared(revoke);
  });

  it("revokeOtherSessions with the access token of another session clears a cookie whose session it ended (both mode)", async () => {
    const mine = await signUp(bothMode);
    const login = await send(bothMode, LOGIN, { input: { email: mine.email, password: GOOD_PASSWORD } });
    const others = await send(bothMode, 'mutation { revokeOtherSessions }', {}, {
      bearer: login.body.data.login.accessToken,
      cookie: cookieHeader(mine.cookie!),
    });
    expect(others.body.data.revokeOtherSessions).toBe(1);
    expectCleared(others);
  });

  it("revokeOtherSessions keeps the cookie of the session the request is made in (both mode)", async () => {
    const mine = await signUp(bothMode);
    await send(bothMode, LOGIN, { input: { email: mine.email, password: GOOD_PASSWORD } });
    const others = await send(bothMode, 'mutation { revokeOtherSessions }', {}, {
      bearer: mine.payload.accessToken,
      cookie: cookieHeader(mine.cookie!),
    });
    expect(others.body.data.revokeOtherSessions).toBe(1);
    expect(others.setCookies).toEqual([]);
  });

  it('expired: refresh through the cookie answers InvalidRefreshTokenError and clears it', async () => {
    const { cookie } = await signUp(cookieMode);
    cookieMode.t.clock.advance(cookie!.maxAge! + 1);
    const res = await refreshWithCookie(cookieMode, cookie!);
    expect(res.body.data.refresh.__typename).toBe('InvalidRefreshTokenError');
    expectCleared(res);
  });

  it('garbage in the cookie: InvalidRefreshTokenError, cleared', async () => {
    const res = await refreshWithCookie(cookieMode, `${HOST_COOKIE}=not-a-token`);
    expect(res.body.data.refresh.__typename).toBe('InvalidRefreshTokenError');
    expectCleared(res);
  });
});

describe('logout', () => {
  it('with the cookie alone revokes its session, answers true and clears the cookie', async () => {
    const { cookie, payload } = await signUp(cookieMode);
    const res = await send(cookieMode, LOGOUT, {}, { cookie: cookieHeader(cookie!) });
    expect(res.body).toEqual({ data: { logout: true } });
    expectCleared(res);
    const me = await send(cookieMode, ME_ID, {}, { bearer: payload.accessToken });
    expect(me.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect((await refreshWithCookie(cookieMode, cookie!)).body.data.refresh.__typename).toBe('InvalidRefreshTokenError');
  });

  it('with the access token clears the cookie too, and a late logout with a dead cookie still answers true and clears it', async () => {
    const { cookie, payload } = await signUp(cookieMode);
    const res = await send(cookieMode, LOGOUT, {}, { bearer: payload.accessToken, cookie: cookieHeader(cookie!) });
    expect(res.body).toEqual({ data: { logout: true } });
    expectCleared(res);
    const late = await send(cookieMode, LOGOUT, {}, { cookie: cookieHeader(cookie!) });
    expect(late.body).toEqual({ data: { logout: true } });
    expectCleared(late);
  });

  it('with a refreshToken argument of another session (both mode) revokes that one and keeps the cookie of the live session', async () => {
    const mine = await signUp(bothMode);
    const other = await signUp(bothMode);
    const res = await send(bothMode, LOGOUT, { token: other.payload.refreshToken }, { cookie: cookieHeader(mine.cookie!) });
    expect(res.body).toEqual({ data: { logout: true } });
    expect(res.setCookies).toEqual([]);
    // The argument's session is over, the cookie's goes on.
    expect((await send(bothMode, REFRESH, { token: other.payload.refreshToken })).body.data.refresh.__typename).toBe('InvalidRefreshTokenError');
    expect((await refreshWithCookie(bothMode, mine.cookie!)).body.data.refresh.__typename).toBe('AuthPayload');
  });

  it('with a refreshToken argument of the cookie\'s own session (both mode) clears the cookie, and with a dead cookie too', async () => {
    const { cookie, payload } = await signUp(bothMode);
    const res = await send(bothMode, LOGOUT, { token: payload.refreshToken }, { cookie: cookieHeader(cookie!) });
    expect(res.body).toEqual({ data: { logout: true } });
    expectCleared(res);
    // A cookie of a session that is already over goes too, whatever the argument names.
    const other = await signUp(bothMode);
    const late = await send(bothMode, LOGOUT, { token: other.payload.refreshToken }, { cookie: cookieHeader(cookie!) });
    expect(late.body).toEqual({ data: { logout: true } });
    expectCleared(late);
  });

  it('with a refreshToken argument and the access token of the cookie\'s session clears the cookie (its session is revoked too)', async () => {
    const mine = await signUp(bothMode);
    const other = await signUp(bothMode);
    const res = await send(
      bothMode,
      LOGOUT,
      { token: other.payload.refreshToken },
      { cookie: cookieHeader(mine.cookie!), bearer: mine.payload.accessToken },
    );
    expect(res.body).toEqual({ data: { logout: true } });
    expectCleared(res);
  });

  it('with nothing at all stays UNAUTHENTICATED (MISSING)', async () => {
    const res = await send(cookieMode, LOGOUT);
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'MISSING' });
  });
});

describe('CORS with the cookie', () => {
  const preflight = (on: Served, origin: string) =>
    fetch(`${on.server.url}/graphql`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });

  it('allows credentials to a listed origin, on the preflight and on the answer', async () => {
    for (const on of [cookieMode, bothMode]) {
      const pre = await preflight(on, APP_ORIGIN);
      expect(pre.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
      expect(pre.headers.get('access-control-allow-credentials')).toBe('true');
      const { answer } = await signUp(on, APP_ORIGIN);
      expect(answer.headers.get('access-control-allow-origin')).toBe(APP_ORIGIN);
      expect(answer.headers.get('access-control-allow-credentials')).toBe('true');
    }
  });

  it('gives an unlisted origin no CORS header at all', async () => {
    const pre = await preflight(cookieMode, EVIL_ORIGIN);
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    expect(pre.headers.get('access-control-allow-credentials')).toBeNull();
    const { answer } = await signUp(cookieMode, EVIL_ORIGIN);
    expect(answer.headers.get('access-control-allow-origin')).toBeNull();
    expect(answer.headers.get('access-control-allow-credentials')).toBeNull();
  });

  it('never allows credentials with any origin (development without CORS_ORIGINS), nor in body mode', async () => {
    for (const [label, on, origin] of [
      ['development *', devCookie, EVIL_ORIGIN],
      ['body mode', bodyMode, APP_ORIGIN],
    ] as const) {
      const pre = await preflight(on, origin);
      expect(pre.headers.get('access-control-allow-credentials'), label).toBeNull();
      const { answer } = await signUp(on, origin);
      expect(answer.headers.get('access-control-allow-credentials'), label).toBeNull();
    }
  });
});

describe('CSRF with the cookie', () => {
  /** A request another site's page can send without a preflight: the browser adds the cookie. */
  const simplePost = (on: Served, cookie: SetCookie, contentType: string, body: string) =>
    fetch(`${on.server.url}/graphql`, {
      method: 'POST',
      headers: { origin: EVIL_ORIGIN, 'content-type': contentType, cookie: cookieHeader(cookie) },
      body,
    }).then(answerOf);

  it('refuses a cross-site simple POST carrying the cookie (text/plain, form, multipart) with 403 CSRF_REQUIRED, spending nothing', async () => {
    const { cookie } = await signUp(cookieMode);
    const operation = JSON.stringify({ query: REFRESH });
    const cases: [string, string][] = [
      ['text/plain', operation],
      ['application/x-www-form-urlencoded', `query=${encodeURIComponent(REFRESH)}`],
      ['multipart/form-data; boundary=x', `--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${operation}\r\n--x--\r\n`],
    ];
    for (const [contentType, body] of cases) {
      const res = await simplePost(cookieMode, cookie!, contentType, body);
      expect(res.status, contentType).toBe(403);
      expect(res.body.errors[0].extensions.code, contentType).toBe('CSRF_REQUIRED');
      expect(res.body.data, contentType).toBeUndefined();
      expect(res.setCookies, contentType).toEqual([]);
    }
    // Nothing was spent: the cookie still rotates.
    expect((await refreshWithCookie(cookieMode, cookie!)).body.data.refresh.__typename).toBe('AuthPayload');
  });

  it('lets a JSON POST from a listed origin (a preflighted request) refresh through the cookie', async () => {
    const { cookie } = await signUp(cookieMode, APP_ORIGIN);
    const res = await refreshWithCookie(cookieMode, cookie!, APP_ORIGIN);
    expect(res.status).toBe(200);
    expect(res.body.data.refresh.__typename).toBe('AuthPayload');
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    expect(cookieSet(res).name).toBe(HOST_COOKIE);
  });
});

describe('the development fallback', () => {
  it('on plain-HTTP localhost outside production: authgraph_refresh, HttpOnly, SameSite=Strict, Path=/, no Secure', async () => {
    const { answer, payload } = await signUp(devCookie);
    const cookie = cookieSet(answer);
    expect(cookie).toEqual({ name: DEV_COOKIE, value: cookie.value, maxAge: payload.refreshExpiresIn, path: '/', httpOnly: true, sameSite: 'strict' });
    expect(answer.setCookies[0]).not.toMatch(/secure/i);
    // It is read back under that name (and only that name).
    const refreshed = await refreshWithCookie(devCookie, cookie);
    expect(refreshed.body.data.refresh.__typename).toBe('AuthPayload');
    const next = cookieSet(refreshed);
    const wrongName = await refreshWithCookie(devCookie, `${HOST_COOKIE}=${next.value}`);
    expect(wrongName.body.data.refresh.__typename).toBe('InvalidRefreshTokenError');
    const logout = await send(devCookie, LOGOUT, {}, { cookie: cookieHeader(next) });
    expectCleared(logout, DEV_COOKIE, false);
  });

  it('does not apply with an https PUBLIC_URL, with http on a non-loopback host, nor ever in production', async () => {
    const cases: [string, Record<string, string>][] = [
      ['development, https PUBLIC_URL', { PUBLIC_URL: 'https://auth.example' }],
      ['development, http on a LAN address', { PUBLIC_URL: 'http://192.168.1.20:4000' }],
      ['development, PUBLIC_URL unset, HOST=0.0.0.0', { HOST: '0.0.0.0' }],
      ['production, http://localhost', { NODE_ENV: 'production', SMTP_URL: smtp.url, PUBLIC_URL: 'http://localhost:4000', RP_ID: 'localhost', RP_ORIGINS: 'http://localhost:4000' }],
    ];
    for (const [label, env] of cases) {
      const served = await serve({ ...env, REFRESH_TOKEN_TRANSPORT: 'cookie' });
      const cookie = cookieSet((await signUp(served)).answer);
      expect(cookie.name, label).toBe(HOST_COOKIE);
      expect(cookie.secure, label).toBe(true);
    }
  });

  it('with a loopback PUBLIC_URL, applies only when HOST is loopback too: 0.0.0.0, :: or a LAN address get __Host- and Secure', async () => {
    const cases: [string, string][] = [
      ['0.0.0.0', HOST_COOKIE],
      ['::', HOST_COOKIE],
      ['192.168.1.20', HOST_COOKIE],
      ['localhost', DEV_COOKIE],
      ['::1', DEV_COOKIE],
      ['127.0.0.5', DEV_COOKIE],
    ];
    for (const [host, name] of cases) {
      const served = await serve({ PUBLIC_URL: 'http://localhost:4000', HOST: host, REFRESH_TOKEN_TRANSPORT: 'cookie' });
      const cookie = cookieSet((await signUp(served)).answer);
      expect(cookie.name, host).toBe(name);
      expect(cookie.secure, host).toBe(name === HOST_COOKIE ? true : undefined);
    }
  });

  it('applies to every loopback name: localhost, *.localhost, 127.x, [::1]', async () => {
    for (const url of ['http://localhost:3000', 'http://app.localhost', 'http://127.0.0.2:4000', 'http://[::1]:4000']) {
      const served = await serve({ PUBLIC_URL: url, REFRESH_TOKEN_TRANSPORT: 'cookie' });
      const cookie = cookieSet((await signUp(served)).answer);
      expect(cookie.name, url).toBe(DEV_COOKIE);
      expect(cookie.secure, url).toBeUndefined();
    }
  });
});
