/**
 * UNAUTHENTICATED tells a client why, in four words only (`extensions.reason`): MISSING,
 * MALFORMED, EXPIRED (the one a refresh cures) and REVOKED. Each through GraphQL, as a client
 * meets it, on every kind of field that can answer it.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../src/db/schema.js';
import { createTestApp, type GraphQLResponse, type TestApp } from '../support/app.js';
import { MY_SESSIONS, NEW_PASSWORD, CHANGE_PASSWORD, REQUEST_EMAIL_VERIFICATION, REVOKE_SESSION, sessionIdOf } from '../support/account.js';
import { registerAdmin, SET_USER_ACTIVE } from '../support/authz.js';
import { claimsOf, mint, tamperClaims, unsignedToken } from '../support/forge.js';
import { GOOD_PASSWORD, loginUser, LOGOUT, ME_ID, registerUser, type Session } from '../support/operations.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({ ACCESS_TOKEN_TTL: '900' });
});
afterAll(() => t.close());

const ADMIN_STATS = `query { adminStats { totalUsers } }`;

/** The one error of an answer, whole: nothing beyond code and reason may reach the client. */
function onlyError(res: GraphQLResponse) {
  expect(res.errors, JSON.stringify(res)).toHaveLength(1);
  const { message, extensions, path } = res.errors![0]!;
  return { message, extensions, path };
}

/** `me` with this Authorization header (none when undefined): the error it answers. */
async function meWith(authorization: string | undefined) {
  const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
  return onlyError(await t.gql(ME_ID, {}, { headers }));
}

const refused = (reason: string, path: string[] = ['me']) => ({
  message: 'A valid access token is required.',
  extensions: { code: 'UNAUTHENTICATED', reason },
  path,
});

describe('extensions.reason of UNAUTHENTICATED', () => {
  it('is MISSING without an Authorization header, or with an empty one', async () => {
    expect(await meWith(undefined)).toEqual(refused('MISSING'));
    expect(await meWith('')).toEqual(refused('MISSING'));
  });

  it('is MALFORMED for another scheme, garbage, a forged signature, alg none, an unknown kid and wrong claims', async () => {
    const victim = await registerUser(t);
    const claims = claimsOf(victim.accessToken);
    const otherKey = new TextEncoder().encode('another-secret-another-secret-another-secret!');
    const tokens = [
      `Basic ${Buffer.from('a:b').toString('base64')}`,
      `Bearer not-a-jwt`,
      `Bearer ${'x'.repeat(5000)}`,
      `Bearer ${await mint({ claims, secret: otherKey })}`,
      `Bearer ${unsignedToken(claims)}`,
      `Bearer ${await mint({ claims, header: { kid: 'no-such-key' } })}`,
      `Bearer ${await mint({ claims: { ...claims, sid: undefined } })}`,
      `Bearer ${await mint({ claims: { ...claims, aud: 'someone-else' } })}`,
      `Bearer ${tamperClaims(victim.accessToken, { sub: crypto.randomUUID() })}`,
    ];
    for (const authorization of tokens) expect(await meWith(authorization), authorization.slice(0, 40)).toEqual(refused('MALFORMED'));
  });

  it('is EXPIRED for a genuine token past its exp, and only then', async () => {
    const victim = await registerUser(t);
    t.clock.advance(899);
    expect(onlyErrorOrNone(await t.gql(ME_ID, {}, { token: victim.accessToken }))).toBeNull();
    t.clock.advance(1);
    expect(await meWith(`Bearer ${victim.accessToken}`)).toEqual(refused('EXPIRED'));
  });

  it('is MALFORMED, not EXPIRED, for an expired token with a forged signature', async () => {
    const victim = await registerUser(t);
    const otherKey = new TextEncoder().encode('another-secret-another-secret-another-secret!');
    const forged = await mint({ claims: claimsOf(victim.accessToken), secret: otherKey });
    t.clock.advance(3600);
    expect(await meWith(`Bearer ${forged}`)).toEqual(refused('MALFORMED'));
  });

  it('is REVOKED after logout', async () => {
    const victim = await registerUser(t);
    expect((await t.gql(LOGOUT, {}, { token: victim.accessToken })).data).toEqual({ logout: true });
    expect(await meWith(`Bearer ${victim.accessToken}`)).toEqual(refused('REVOKED'));
  });

  it('is REVOKED when another session of the user revokes this one', async () => {
    const victim = await registerUser(t);
    const other = await loginUser(t, victim.email);
    const revoke = await t.gql(REVOKE_SESSION, { id: sessionIdOf(victim.accessToken) }, { token: other.accessToken });
    expect(revoke.errors).toBeUndefined();
    expect(await meWith(`Bearer ${victim.accessToken}`)).toEqual(refused('REVOKED'));
  });

  it('is REVOKED after a sign-out everywhere and after a password change, for the tokens issued before', async () => {
    const victim = await registerUser(t);
    const other = await loginUser(t, victim.email);
    expect((await t.gql(LOGOUT, { everywhere: true }, { token: other.accessToken })).data).toEqual({ logout: true });
    expect(await meWith(`Bearer ${victim.accessToken}`)).toEqual(refused('REVOKED'));

    const next = await loginUser(t, victim.email);
    const change = await t.gql(CHANGE_PASSWORD, { current: GOOD_PASSWORD, next: NEW_PASSWORD }, { token: next.accessToken });
    expect(change.data?.changePassword.__typename).toBe('AuthPayload');
    expect(await meWith(`Bearer ${next.accessToken}`)).toEqual(refused('REVOKED'));
  });

  it('is REVOKED for the token of a disabled user and of a user who no longer exists', async () => {
    const admin = await registerAdmin(t);
    const disabled = await registerUser(t);
    const disable = await t.gql(SET_USER_ACTIVE, { userId: disabled.userId, active: false }, { token: admin.accessToken });
    expect(disable.errors).toBeUndefined();
    expect(await meWith(`Bearer ${disabled.accessToken}`)).toEqual(refused('REVOKED'));

    const gone = await registerUser(t);
    await t.database.db.delete(users).where(eq(users.id, gone.userId));
    expect(await meWith(`Bearer ${gone.accessToken}`)).toEqual(refused('REVOKED'));
  });

  it('is REVOKED for a token whose session has reached SESSION_MAX_AGE, although the token itself is unexpired', async () => {
    const short = await createTestApp({ SESSION_MAX_AGE: '600', ACCESS_TOKEN_TTL: '900' }, t.database);
    try {
      const victim = await registerUser(short);
      short.clock.advance(600);
      const res = await short.gql(ME_ID, {}, { token: victim.accessToken });
      expect(onlyError(res)).toEqual(refused('REVOKED'));
    } finally {
      await short.close();
    }
  });
});

describe('every field that answers UNAUTHENTICATED gives the reason', () => {
  let expired: Session;
  let revoked: Session;
  beforeAll(async () => {
    revoked = await registerUser(t);
    await t.gql(LOGOUT, {}, { token: revoked.accessToken });
  });

  it.each([
    ['a scope-guarded query (me)', ME_ID, ['me']],
    ['a permission-guarded query (adminStats)', ADMIN_STATS, ['adminStats']],
    ['the sessions of the viewer (me.sessions)', MY_SESSIONS, ['me']],
    ['requestEmailVerification', REQUEST_EMAIL_VERIFICATION, ['requestEmailVerification']],
    ['revokeSession', `mutation { revokeSession(id: "${crypto.randomUUID()}") }`, ['revokeSession']],
    // Plain logout answers true for dead tokens (test/graphql/logout.test.ts); everywhere needs a live one.
    ['logout everywhere', `mutation { logout(everywhere: true) }`, ['logout']],
  ])('%s', async (_name, query, path) => {
    expect(onlyError(await t.gql(query))).toEqual(refused('MISSING', path));
    expect(onlyError(await t.gql(query, {}, { token: 'garbage' }))).toEqual(refused('MALFORMED', path));
    expect(onlyError(await t.gql(query, {}, { token: revoked.accessToken }))).toEqual(refused('REVOKED', path));
    expired = await registerUser(t);
    t.clock.advance(901);
    expect(onlyError(await t.gql(query, {}, { token: expired.accessToken }))).toEqual(refused('EXPIRED', path));
  });

  it('FORBIDDEN, for a signed-in user, carries no reason', async () => {
    const user = await registerUser(t);
    const res = onlyError(await t.gql(ADMIN_STATS, {}, { token: user.accessToken }));
    expect(res.extensions).toEqual({ code: 'FORBIDDEN' });
  });
});

/** The error of an answer, or null when it has none. */
function onlyErrorOrNone(res: GraphQLResponse) {
  return res.errors ? onlyError(res) : null;
}
