import { randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refreshTokens, users } from '../../src/db/schema.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { LOGOUT, ME, registerUser, loginUser, type Session } from '../support/operations.js';
import { REFRESH } from '../support/operations.js';
import { childrenOf, refreshTokenId, refreshTokenRow, sessionOfRefreshToken, sessionsOf } from '../support/rows.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(() => t.close());

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/;

/** Runs `refresh` on an app and returns its payload; a GraphQL error (a 500 in disguise) fails the test. */
async function refreshOn(app: TestApp, token: string | null | undefined, options?: Parameters<TestApp['gql']>[2]) {
  const res = await app.gql(REFRESH, token === undefined ? {} : { token }, options);
  expect(res.status).toBe(200);
  expect(res.errors).toBeUndefined();
  return res.data?.refresh;
}
const refresh = (token: string | null | undefined, options?: Parameters<TestApp['gql']>[2]) => refreshOn(t, token, options);

async function expectRejected(app: TestApp, token: string | null | undefined) {
  const payload = await refreshOn(app, token);
  expect(payload).toEqual({
    __typename: 'InvalidRefreshTokenError',
    code: 'INVALID_REFRESH_TOKEN',
    message: expect.any(String),
  });
}

/** `me` with an access token: the user id, or the error code it was refused with. */
async function meWith(accessToken: string): Promise<{ id: string } | { code: string | undefined }> {
  const res = await t.gql(ME, {}, { token: accessToken });
  if (res.data?.me) {
    expect(res.errors).toBeUndefined();
    return { id: res.data.me.id };
  }
  expect(res.data?.me ?? null).toBeNull();
  expect(res.errors).toHaveLength(1);
  return { code: res.errors![0]!.extensions?.code };
}

/** A token of the right shape that was never issued. */
const unknownToken = () => `${randomBytes(16).toString('base64url')}.${randomBytes(32).toString('base64url')}`;

/** The token with one character of its secret part changed. */
function withFlippedSecret(token: string): string {
  const [id, secret] = token.split('.') as [string, string];
  const flipped = secret[0] === 'A' ? 'B' : 'A';
  return `${id}.${flipped}${secret.slice(1)}`;
}

describe('refresh', () => {
  it('rotates: returns a new refresh token and spends the presented one', async () => {
    const session = await registerUser(t);
    const payload = await refresh(session.refreshToken);
    expect(payload.__typename).toBe('AuthPayload');
    expect(payload.tokenType).toBe('Bearer');
    expect(payload.user.id).toBe(session.userId);
    expect(payload.refreshToken).toMatch(TOKEN_SHAPE);
    expect(payload.refreshToken).not.toBe(session.refreshToken);
    expect(payload.accessToken).not.toBe(session.accessToken);

    const spent = await refreshTokenRow(t, session.refreshToken);
    expect(spent?.rotatedAt?.getTime()).toBe(t.clock.now().getTime());
    const successor = await refreshTokenRow(t, payload.refreshToken);
    expect(successor).toMatchObject({ parentId: refreshTokenId(session.refreshToken), sessionId: spent!.sessionId, rotatedAt: null });
    expect(await childrenOf(t, session.refreshToken)).toHaveLength(1);
    // Same session, no new one.
    expect(await sessionsOf(t, session.userId)).toHaveLength(1);
  });

  it('issues refresh tokens of the shape <id>.<secret> and stores only a hash of the secret', async () => {
    const session = await registerUser(t);
    expect(session.refreshToken).toMatch(TOKEN_SHAPE);
    const [id, secret] = session.refreshToken.split('.') as [string, string];
    const row = await refreshTokenRow(t, session.refreshToken);
    expect(row?.id).toBe(id);
    expect(row?.secretHash).not.toContain(secret);
    expect(JSON.stringify(row)).not.toContain(secret);
  });

  it('gives an access token that works on me', async () => {
    const session = await registerUser(t);
    const payload = await refresh(session.refreshToken);
    expect(await meWith(payload.accessToken)).toEqual({ id: session.userId });
  });

  it('keeps the successor usable: it rotates in turn', async () => {
    const session = await registerUser(t);
    const first = await refresh(session.refreshToken);
    const second = await refresh(first.refreshToken);
    expect(second.__typename).toBe('AuthPayload');
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect((await refreshTokenRow(t, second.refreshToken))?.parentId).toBe(refreshTokenId(first.refreshToken));
  });

  it('answers a retry of the spent token within the grace period with the very same successor', async () => {
    const session = await registerUser(t);
    const first = await refresh(session.refreshToken);
    t.clock.advance(5);
    const retry = await refresh(session.refreshToken);
    expect(retry.__typename).toBe('AuthPayload');
    expect(retry.refreshToken).toBe(first.refreshToken);
    expect(retry.user.id).toBe(session.userId);
    expect(await meWith(retry.accessToken)).toEqual({ id: session.userId });
    // Still one successor, still live, and the session is not revoked.
    expect(await childrenOf(t, session.refreshToken)).toHaveLength(1);
    expect((await sessionOfRefreshToken(t, session.refreshToken)).revokedAt).toBeNull();
    const next = await refresh(first.refreshToken);
    expect(next.__typename).toBe('AuthPayload');
  });

  it('treats the spent token after the grace period as a replay: rejected and the whole session revoked', async () => {
    const session = await registerUser(t);
    const first = await refresh(session.refreshToken);
    t.clock.advance(11);
    await expectRejected(t, session.refreshToken);

    expect((await sessionOfRefreshToken(t, session.refreshToken)).revokedAt?.getTime()).toBe(t.clock.now().getTime());
    // The successor dies with the session...
    await expectRejected(t, first.refreshToken);
    // ...and so does every access token issued in it.
    expect(await meWith(session.accessToken)).toEqual({ code: 'UNAUTHENTICATED' });
    expect(await meWith(first.accessToken)).toEqual({ code: 'UNAUTHENTICATED' });
  });

  it('does not let a replay touch other sessions of the same user', async () => {
    const session = await registerUser(t);
    const other = await loginUser(t, session.email);
    await refresh(session.refreshToken);
    t.clock.advance(11);
    await expectRejected(t, session.refreshToken);
    expect(await meWith(other.accessToken)).toEqual({ id: session.userId });
    expect((await refresh(other.refreshToken)).__typename).toBe('AuthPayload');
  });

  it('treats a spent token whose successor was rotated as a replay, even within the grace period', async () => {
    const session = await registerUser(t);
    const first = await refresh(session.refreshToken);
    const second = await refresh(first.refreshToken);
    expect(second.__typename).toBe('AuthPayload');
    await expectRejected(t, session.refreshToken);
    expect((await sessionOfRefreshToken(t, session.refreshToken)).revokedAt).not.toBeNull();
    await expectRejected(t, second.refreshToken);
    expect(await meWith(second.accessToken)).toEqual({ code: 'UNAUTHENTICATED' });
  });

  it('rejects an expired refresh token', async () => {
    const session = await registerUser(t);
    t.clock.advance(t.config.refreshTokenTtl + 1);
    await expectRejected(t, session.refreshToken);
    // Expiry is not a replay: nothing was rotated.
    expect((await refreshTokenRow(t, session.refreshToken))?.rotatedAt).toBeNull();
  });

  it('rejects a well-shaped token with an unknown id', async () => {
    await expectRejected(t, unknownToken());
  });

  it('rejects a known id with a wrong secret and does not spend the real token', async () => {
    const session = await registerUser(t);
    await expectRejected(t, withFlippedSecret(session.refreshToken));
    await expectRejected(t, `${refreshTokenId(session.refreshToken)}.${randomBytes(32).toString('base64url')}`);
    expect((await refreshTokenRow(t, session.refreshToken))?.rotatedAt).toBeNull();
    expect((await refresh(session.refreshToken)).__typename).toBe('AuthPayload');
  });

  it('rejects malformed tokens without a server error', async () => {
    const session = await registerUser(t);
    const [id, secret] = session.refreshToken.split('.') as [string, string];
    for (const token of [
      '',
      ' ',
      'no-dot-at-all',
      `${id}${secret}`,
      `${id}.`,
      `.${secret}`,
      `${id}.${secret}.extra`,
      `${session.refreshToken}x`,
      `${id}.${secret}`.replace(/.$/, '+'),
      'x'.repeat(10_000),
      `${'a'.repeat(5000)}.${'b'.repeat(5000)}`,
      session.accessToken,
      "' or 1=1 --",
      '\u0000',
    ]) {
      await expectRejected(t, token);
    }
  });

  it('rejects a null or missing refresh token argument without a server error', async () => {
    await expectRejected(t, null);
    await expectRejected(t, undefined);
    const inline = await t.gql('mutation { refresh(refreshToken: null) { __typename ... on Error { code } } }');
    expect(inline.errors).toBeUndefined();
    expect(inline.data?.refresh).toEqual({ __typename: 'InvalidRefreshTokenError', code: 'INVALID_REFRESH_TOKEN' });
  });

  it('rejects the refresh token of a disabled user', async () => {
    const session = await registerUser(t);
    await t.database.db.update(users).set({ active: false }).where(eq(users.id, session.userId));
    await t.services.changes.sync();
    await expectRejected(t, session.refreshToken);
  });

  it('rejects the refresh token of a session that was logged out', async () => {
    const session = await registerUser(t);
    const out = await t.gql(LOGOUT, {}, { token: session.accessToken });
    expect(out.data?.logout).toBe(true);
    await expectRejected(t, session.refreshToken);
  });

  it('moves the session lastUsedAt on refresh', async () => {
    const session = await registerUser(t);
    const before = await sessionOfRefreshToken(t, session.refreshToken);
    expect(before.lastUsedAt.getTime()).toBe(t.clock.now().getTime());
    t.clock.advance(120);
    expect((await refresh(session.refreshToken)).__typename).toBe('AuthPayload');
    const after = await sessionOfRefreshToken(t, session.refreshToken);
    expect(after.lastUsedAt.getTime()).toBe(t.clock.now().getTime());
    expect(after.lastUsedAt.getTime() - before.lastUsedAt.getTime()).toBe(120_000);
  });

  it('gives the successor a full REFRESH_TOKEN_TTL while the session is young', async () => {
    const session = await registerUser(t);
    t.clock.advance(30);
    const payload = await refresh(session.refreshToken);
    expect(payload.refreshExpiresIn).toBe(t.config.refreshTokenTtl);
    const row = await refreshTokenRow(t, payload.refreshToken);
    expect(row!.expiresAt.getTime() - t.clock.now().getTime()).toBe(t.config.refreshTokenTtl * 1000);
  });

  it('still refreshes when a bad access token is sent along', async () => {
    const session = await registerUser(t);
    const payload = await refresh(session.refreshToken, { token: 'not-a-jwt' });
    expect(payload.__typename).toBe('AuthPayload');
  });
});

describe('refresh within SESSION_MAX_AGE', () => {
  let s: TestApp;
  let session: Session;
  beforeAll(async () => {
    s = await createTestApp({ SESSION_MAX_AGE: '100', REFRESH_TOKEN_TTL: '60' });
    session = await registerUser(s);
  });
  afterAll(() => s.close());

  it('never outlives SESSION_MAX_AGE from sign-in', async () => {
    s.clock.advance(50);
    const payload = await refreshOn(s, session.refreshToken);
    expect(payload.__typename).toBe('AuthPayload');
    expect(payload.refreshExpiresIn).toBeLessThanOrEqual(50);
    expect(payload.refreshExpiresIn).toBe(50);
    const row = (await s.database.db.select().from(refreshTokens).where(eq(refreshTokens.id, refreshTokenId(payload.refreshToken))))[0]!;
    expect(row.expiresAt.getTime()).toBe(s.clock.now().getTime() + 50_000);

    s.clock.advance(51); // 101 s after sign-in
    await expectRejected(s, payload.refreshToken);
  });
});
