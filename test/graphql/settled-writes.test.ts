/**
 * A mutation answers once this instance has heard, through the change feed, what it committed
 * (the settle after every mutation), except where a field declares that success commits nothing
 * the feed carries: the rotating refresh. The channel itself is the witness here, so the
 * declaration cannot drift from what the triggers announce.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { heardDuring } from '../support/channel.js';
import { LOGOUT, ME_ID, REFRESH_BRIEF, registerUser } from '../support/operations.js';
import { sessionOfRefreshToken } from '../support/rows.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(() => t.close());
afterEach(() => {
  vi.restoreAllMocks();
});

async function refresh(token: string) {
  const res = await t.gql(REFRESH_BRIEF, { token });
  expect(res.errors).toBeUndefined();
  return res.data?.refresh as { __typename: string; refreshToken?: string; code?: string };
}

describe('the settle after a mutation', () => {
  it('a successful refresh, a rotation or a retry within the grace period, announces nothing and does not wait', async () => {
    const session = await registerUser(t);
    const settle = vi.spyOn(t.services.changes, 'settle');
    const heard = await heardDuring(t, async () => {
      const rotated = await refresh(session.refreshToken);
      expect(rotated.__typename).toBe('AuthPayload');
      const retried = await refresh(session.refreshToken);
      expect(retried).toMatchObject({ __typename: 'AuthPayload', refreshToken: rotated.refreshToken });
      expect((await refresh(rotated.refreshToken!)).__typename).toBe('AuthPayload');
    });
    expect(heard).toEqual([]);
    expect(settle).not.toHaveBeenCalled();
  });

  it('a replayed refresh token announces its session revoked and waits for it: the access token is refused at once', async () => {
    const session = await registerUser(t);
    const { id: sessionId } = await sessionOfRefreshToken(t, session.refreshToken);
    const second = (await refresh(session.refreshToken)).refreshToken!;
    expect((await refresh(second)).__typename).toBe('AuthPayload');
    const settle = vi.spyOn(t.services.changes, 'settle');
    const heard = await heardDuring(t, async () => {
      expect(await refresh(session.refreshToken)).toMatchObject({ __typename: 'InvalidRefreshTokenError' });
    });
    expect(heard).toContain(`s:${sessionId}`);
    expect(settle).toHaveBeenCalledTimes(1);
    const me = await t.gql(ME_ID, {}, { token: session.accessToken });
    expect(me.data?.me).toBeNull();
    expect(me.errors?.[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'REVOKED' });
  });

  it('every other mutation waits, whatever it answers: logout', async () => {
    const session = await registerUser(t);
    const settle = vi.spyOn(t.services.changes, 'settle');
    const res = await t.gql(LOGOUT, { token: session.refreshToken }, { token: session.accessToken });
    expect(res.data?.logout).toBe(true);
    expect(settle).toHaveBeenCalledTimes(1);
  });
});
