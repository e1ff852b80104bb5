/**
 * AuthPayload tells when each token expires, as instants (accessTokenExpiresAt,
 * refreshTokenExpiresAt), exactly: the access token's `exp`, the refresh token's stored end.
 * The clock is frozen, so every expected instant is computed from it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { NEW_PASSWORD } from '../support/account.js';
import { inspect } from '../support/forge.js';
import { GOOD_PASSWORD, uniqueEmail } from '../support/operations.js';

const ACCESS_TTL = 300;
const REFRESH_TTL = 3600;
const SESSION_MAX_AGE = 7200;

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({
    ACCESS_TOKEN_TTL: String(ACCESS_TTL),
    REFRESH_TOKEN_TTL: String(REFRESH_TTL),
    SESSION_MAX_AGE: String(SESSION_MAX_AGE),
  });
});
afterAll(() => t.close());

const PAYLOAD = `__typename ... on AuthPayload {
  accessToken refreshToken expiresIn refreshExpiresIn accessTokenExpiresAt refreshTokenExpiresAt
} ... on Error { code }`;
const REGISTER = `mutation R($input: RegisterInput!) { register(input: $input) { ${PAYLOAD} } }`;
const LOGIN = `mutation L($input: LoginInput!) { login(input: $input) { ${PAYLOAD} } }`;
const REFRESH = `mutation F($token: String) { refresh(refreshToken: $token) { ${PAYLOAD} } }`;

interface Payload {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  refreshExpiresIn: number;
  accessTokenExpiresAt: string;
  refreshTokenExpiresAt: string;
}

async function payloadOf(query: string, variables: Record<string, unknown>, field: string, token?: string): Promise<Payload> {
  const res = await t.gql(query, variables, { token });
  const payload = res.data?.[field];
  expect(payload?.__typename, JSON.stringify(res)).toBe('AuthPayload');
  return payload;
}

/** The instant `seconds` after now, and the access token's exp (now's whole second + the TTL). */
const after = (seconds: number) => new Date(t.clock.now().getTime() + seconds * 1000).toISOString();
const accessExpiry = () => new Date((Math.floor(t.clock.now().getTime() / 1000) + ACCESS_TTL) * 1000).toISOString();

describe('AuthPayload expiry instants', () => {
  it('on register: the access token exp and the refresh token TTL from now, to the millisecond', async () => {
    t.clock.advance(0.345); // a fraction of a second, so exp's rounding down shows
    const email = uniqueEmail();
    const payload = await payloadOf(REGISTER, { input: { email, password: GOOD_PASSWORD } }, 'register');
    expect(payload.accessTokenExpiresAt).toBe(accessExpiry());
    expect(payload.refreshTokenExpiresAt).toBe(after(REFRESH_TTL));
    expect(new Date(payload.accessTokenExpiresAt).getTime() / 1000).toBe(inspect(payload.accessToken).claims.exp);
  });

  it('on login, on refresh and on a retry within the grace period (the same successor, the same instants)', async () => {
    const email = uniqueEmail();
    await payloadOf(REGISTER, { input: { email, password: GOOD_PASSWORD } }, 'register');
    t.clock.advance(10);
    const login = await payloadOf(LOGIN, { input: { email, password: GOOD_PASSWORD } }, 'login');
    expect(login.accessTokenExpiresAt).toBe(accessExpiry());
    expect(login.refreshTokenExpiresAt).toBe(after(REFRESH_TTL));

    t.clock.advance(100.5);
    const refreshedAt = after(REFRESH_TTL);
    const refreshed = await payloadOf(REFRESH, { token: login.refreshToken }, 'refresh');
    expect(refreshed.accessTokenExpiresAt).toBe(accessExpiry());
    expect(refreshed.refreshTokenExpiresAt).toBe(refreshedAt);

    t.clock.advance(2);
    const retried = await payloadOf(REFRESH, { token: login.refreshToken }, 'refresh');
    expect(retried.refreshToken).toBe(refreshed.refreshToken);
    expect(retried.refreshTokenExpiresAt).toBe(refreshedAt);
    expect(retried.accessTokenExpiresAt).toBe(accessExpiry());
  });

  it("stops refreshTokenExpiresAt at the session's end (SESSION_MAX_AGE after sign-in)", async () => {
    const email = uniqueEmail();
    const first = await payloadOf(REGISTER, { input: { email, password: GOOD_PASSWORD } }, 'register');
    const sessionEnd = after(SESSION_MAX_AGE);
    t.clock.advance(3500);
    const middle = await payloadOf(REFRESH, { token: first.refreshToken }, 'refresh');
    expect(middle.refreshTokenExpiresAt).toBe(after(REFRESH_TTL));
    t.clock.advance(3200); // 500 s before the session's end: less than REFRESH_TTL left
    const late = await payloadOf(REFRESH, { token: middle.refreshToken }, 'refresh');
    expect(late.refreshTokenExpiresAt).toBe(sessionEnd);
    expect(late.refreshExpiresIn).toBe(500);
  });

  it('on changePassword, for the new session', async () => {
    const email = uniqueEmail();
    const first = await payloadOf(REGISTER, { input: { email, password: GOOD_PASSWORD } }, 'register');
    t.clock.advance(42);
    const res = await t.gql(
      `mutation C($current: String!, $next: String!) { changePassword(currentPassword: $current, newPassword: $next) { ${PAYLOAD} } }`,
      { current: GOOD_PASSWORD, next: NEW_PASSWORD },
      { token: first.accessToken },
    );
    expect(res.data?.changePassword).toMatchObject({ accessTokenExpiresAt: accessExpiry(), refreshTokenExpiresAt: after(REFRESH_TTL) });
  });

  it('agrees with expiresIn and refreshExpiresIn (whole seconds left, rounded down)', async () => {
    t.clock.advance(0.7);
    const payload = await payloadOf(REGISTER, { input: { email: uniqueEmail(), password: GOOD_PASSWORD } }, 'register');
    const now = t.clock.now().getTime();
    expect(payload.expiresIn).toBe(Math.floor((Date.parse(payload.accessTokenExpiresAt) - now) / 1000));
    expect(payload.refreshExpiresIn).toBe(Math.floor((Date.parse(payload.refreshTokenExpiresAt) - now) / 1000));
  });
});
