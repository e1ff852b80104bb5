/**
 * Sessions record how they were authenticated (`amr`) and when (`auth_time`); every access token
 * of a session carries both, through refreshes, for downstream services.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { epochSeconds } from '../../src/time.js';
import { inspect } from '../support/forge.js';
import { loginUser, REFRESH_BRIEF, registerUser } from '../support/operations.js';
import { serveTestApp, type ServedApp } from '../support/served.js';

let s: ServedApp;
beforeAll(async () => {
  s = await serveTestApp();
});
afterAll(async () => {
  await s?.close();
});

describe('how a session was authenticated', () => {
  it('gives a password sign-in amr ["pwd"] and auth_time = the instant of the sign-in', async () => {
    const { email } = await registerUser(s);
    s.t.clock.advance(42);
    const signedIn = await loginUser(s, email);
    const { claims } = inspect(signedIn.accessToken);
    expect(claims.amr).toEqual(['pwd']);
    expect(claims.auth_time).toBe(epochSeconds(s.t.clock.now()));
  });

  it('keeps amr and auth_time of the sign-in through refreshes, while iat moves on', async () => {
    const registered = await registerUser(s);
    const signedInAt = epochSeconds(s.t.clock.now());
    s.t.clock.advance(600);
    const res = await s.gql(REFRESH_BRIEF, { token: registered.refreshToken });
    const refreshed = res.data?.refresh;
    expect(refreshed?.__typename, JSON.stringify(res)).toBe('AuthPayload');
    const { claims } = inspect(refreshed.accessToken);
    expect(claims.amr).toEqual(['pwd']);
    expect(claims.auth_time).toBe(signedInAt);
    expect(claims.iat).toBe(signedInAt + 600);
  });
});
