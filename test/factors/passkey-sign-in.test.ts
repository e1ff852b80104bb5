/**
 * Passwordless sign-in with a passkey, through GraphQL over a real port, answered by a
 * software authenticator: it requires user verification (two factors, amr hwk and user), and
 * every bent assertion (no user verification, origin, RP ID, challenge, signature, counter, a
 * removed passkey) is refused, as is a disabled account; the purge deletes the challenges of
 * ceremonies never finished.
 */
import { decodeJwt } from 'jose';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret } from '../../src/crypto/split-token.js';
import { passkeys, webauthnChallenges } from '../../src/db/schema.js';
import { purgeExpired } from '../../src/purge.js';
import { registerAdmin, SET_USER_ACTIVE } from '../support/authz.js';
import { GOOD_PASSWORD, ME_ID, registerUser } from '../support/operations.js';
import { sessionsOf } from '../support/rows.js';
import { serveTestApp, type ServedApp } from '../support/served.js';
import { SoftAuthenticator } from '../support/webauthn-authenticator.js';
import { addPasskey, FINISH_SIGN_IN, ORIGIN, PASSKEY_ENV, passkeySignIn, REMOVE_PASSKEY, START_SIGN_IN } from './passkey-support.js';
import { COMPLETE_SIGN_IN, eventsOf, LOGIN_2FA } from './support.js';

let s: ServedApp;
beforeAll(async () => {
  s = await serveTestApp(PASSKEY_ENV);
});
afterAll(async () => {
  await s?.close();
});

/** A new user with one passkey of a new authenticator. */
async function userWithPasskey(options: { counting?: boolean } = {}) {
  const user = await registerUser(s);
  const authenticator = new SoftAuthenticator(ORIGIN);
  const passkey = await addPasskey(s, user.accessToken, authenticator, options);
  return { user, authenticator, passkey };
}

const allowedIds = async (email: string | null) =>
  ((await s.gql(START_SIGN_IN, { email })).data!.startPasskeySignIn.allowCredentials ?? []).map((c: { id: string }) => c.id);

describe('finishPasskeySignIn', () => {
  it('signs in with a discoverable passkey and user verification: a session of two factors (amr hwk, user), audited, lastUsedAt set', async () => {
    const { user, authenticator, passkey } = await userWithPasskey();
    const answer = await passkeySignIn(s, authenticator);
    expect(answer.__typename, JSON.stringify(answer)).toBe('AuthPayload');
    expect(answer.user.id).toBe(user.userId);
    expect(decodeJwt(answer.accessToken)).toMatchObject({ sub: user.userId, amr: ['hwk', 'user'] });
    expect((await s.gql(ME_ID, {}, { token: answer.accessToken })).data!.me.id).toBe(user.userId);
    const [row] = await s.t.database.db.select().from(passkeys).where(eq(passkeys.id, passkey.id));
    expect(row!.lastUsedAt).toEqual(s.t.clock.now());
    expect(row!.counter).toBe(1);
    const events = await eventsOf(s, user.userId, ['login_success']);
    expect(events.at(-1)!.detail).toMatchObject({ method: 'passkey', passkeyId: passkey.id, amr: ['hwk', 'user'] });
  });

  it('refuses an assertion without user verification (a key held, one factor): InvalidCredentialsError, audited, no session, no use recorded', async () => {
    const { user, authenticator, passkey } = await userWithPasskey();
    const sessionsBefore = (await sessionsOf(s.t, user.userId)).length;
    const answer = await passkeySignIn(s, authenticator, { bend: { userVerified: false } });
    expect(answer).toMatchObject({ __typename: 'InvalidCredentialsError', code: 'INVALID_CREDENTIALS' });
    expect(await sessionsOf(s.t, user.userId)).toHaveLength(sessionsBefore);
    expect(await eventsOf(s, user.userId, ['login_success'])).toEqual([]);
    const failures = await eventsOf(s, user.userId, ['login_failure']);
    expect(failures.map((e) => e.detail)).toEqual([{ reason: 'passkey_user_not_verified', method: 'passkey' }]);
    const [row] = await s.t.database.db.select().from(passkeys).where(eq(passkeys.id, passkey.id));
    expect(row).toMatchObject({ lastUsedAt: null, counter: 0 });
  });

  it('says user_not_verified only of a genuine assertion: a forged one without user verification is unverified', async () => {
    const { user, authenticator } = await userWithPasskey();
    expect((await passkeySignIn(s, authenticator, { bend: { userVerified: false, breakSignature: true } })).__typename).toBe('InvalidCredentialsError');
    expect((await eventsOf(s, user.userId, ['login_failure'])).map((e) => e.detail)).toEqual([{ reason: 'passkey_unverified', method: 'passkey' }]);
  });

  it('lets the same authenticator without user verification pass as the second factor after the password (amr pwd, hwk)', async () => {
    const { user, authenticator } = await userWithPasskey();
    expect((await passkeySignIn(s, authenticator, { bend: { userVerified: false } })).__typename).toBe('InvalidCredentialsError');
    const step = await s.gql(LOGIN_2FA, { input: { email: user.email, password: GOOD_PASSWORD } });
    const { challenge, passkeyOptions } = step.data!.login;
    expect(passkeyOptions, JSON.stringify(step)).toMatchObject({ userVerification: 'preferred' });
    const done = await s.gql(COMPLETE_SIGN_IN, { challenge, passkey: authenticator.get(passkeyOptions, { userVerified: false }) });
    expect(done.data?.completeSignIn.__typename, JSON.stringify(done)).toBe('AuthPayload');
    expect(decodeJwt(done.data!.completeSignIn.accessToken).amr).toEqual(['pwd', 'hwk']);
  });

  it.each([
    ['another origin', { origin: 'https://evil.example' }],
    ['another RP ID', { rpId: 'evil.example' }],
    ['a challenge never issued', { challenge: 'bm90LXRoZS1jaGFsbGVuZ2UtdGhhdC13YXMtaXNzdWVk' }],
    ['a broken signature', { breakSignature: true }],
  ])('refuses an assertion with %s (InvalidCredentialsError), audited', async (_what, bend) => {
    const { user, authenticator } = await userWithPasskey();
    const answer = await passkeySignIn(s, authenticator, { bend });
    expect(answer).toMatchObject({ __typename: 'InvalidCredentialsError', code: 'INVALID_CREDENTIALS' });
    const failures = await eventsOf(s, user.userId, ['login_failure']);
    if (!('challenge' in bend)) expect(failures.at(-1)!.detail).toMatchObject({ method: 'passkey' });
  });

  it('takes each challenge once: the same assertion sent again is refused', async () => {
    const { authenticator } = await userWithPasskey();
    const started = await s.gql(START_SIGN_IN, { email: null });
    const response = authenticator.get(started.data!.startPasskeySignIn);
    expect((await s.gql(FINISH_SIGN_IN, { response })).data!.finishPasskeySignIn.__typename).toBe('AuthPayload');
    expect((await s.gql(FINISH_SIGN_IN, { response })).data!.finishPasskeySignIn.__typename).toBe('InvalidCredentialsError');
  });

  it('refuses a counter that goes backwards or stays put (a cloned authenticator), and keeps accepting one that moves on', async () => {
    const { user, authenticator } = await userWithPasskey();
    expect((await passkeySignIn(s, authenticator, { bend: { counter: 5 } })).__typename).toBe('AuthPayload');
    expect((await passkeySignIn(s, authenticator, { bend: { counter: 4 } })).__typename).toBe('InvalidCredentialsError');
    expect((await passkeySignIn(s, authenticator, { bend: { counter: 5 } })).__typename).toBe('InvalidCredentialsError');
    expect((await passkeySignIn(s, authenticator, { bend: { counter: 6 } })).__typename).toBe('AuthPayload');
    const failures = await eventsOf(s, user.userId, ['login_failure']);
    expect(failures.map((e) => e.detail)).toEqual([
      expect.objectContaining({ reason: 'passkey_counter' }),
      expect.objectContaining({ reason: 'passkey_counter' }),
    ]);
  });

  it('lets only one of two concurrent assertions with the same counter value sign in (a clone racing the original)', async () => {
    const { user, authenticator } = await userWithPasskey();
    const options = await Promise.all([0, 1].map(async () => (await s.gql(START_SIGN_IN, {})).data!.startPasskeySignIn));
    const responses = options.map((o) => authenticator.get(o, { counter: 9 }));
    const answers = await Promise.all(responses.map(async (response) => (await s.gql(FINISH_SIGN_IN, { response })).data!.finishPasskeySignIn.__typename));
    expect(answers.sort()).toEqual(['AuthPayload', 'InvalidCredentialsError']);
    expect((await eventsOf(s, user.userId, ['login_success'])).filter((e) => e.detail?.method === 'passkey')).toHaveLength(1);
  });

  it('keeps working with an authenticator whose counter is always zero', async () => {
    const { authenticator } = await userWithPasskey({ counting: false });
    for (let i = 0; i < 3; i += 1) expect((await passkeySignIn(s, authenticator)).__typename).toBe('AuthPayload');
  });

  it('refuses a removed passkey', async () => {
    const { authenticator, passkey } = await userWithPasskey();
    // Removed from a session that passed two factors (this passkey, verified), as removal requires.
    const { accessToken } = await passkeySignIn(s, authenticator);
    expect((await s.gql(REMOVE_PASSKEY, { id: passkey.id }, { token: accessToken })).data!.removePasskey).toBe(true);
    expect((await passkeySignIn(s, authenticator)).__typename).toBe('InvalidCredentialsError');
  });
});

describe('finishPasskeySignIn of a disabled account', () => {
  it('refuses it with InvalidCredentialsError, disabled between the options and the assertion, issuing nothing and recording no use', async () => {
    const { user, authenticator, passkey } = await userWithPasskey();
    const admin = await registerAdmin(s.t);
    const started = await s.gql(START_SIGN_IN, { email: null });
    const disabled = await s.gql(SET_USER_ACTIVE, { userId: user.userId, active: false }, { token: admin.accessToken });
    expect(disabled.data?.setUserActive, JSON.stringify(disabled)).toEqual({ id: user.userId, active: false });
    const sessionsBefore = (await sessionsOf(s.t, user.userId)).length;

    const res = await s.gql(FINISH_SIGN_IN, { response: authenticator.get(started.data!.startPasskeySignIn) });
    expect(res.data?.finishPasskeySignIn).toEqual({ __typename: 'InvalidCredentialsError', code: 'INVALID_CREDENTIALS', message: expect.any(String) });
    expect(await sessionsOf(s.t, user.userId)).toHaveLength(sessionsBefore);
    expect(await eventsOf(s, user.userId, ['login_success'])).toEqual([]);
    const [failure] = await eventsOf(s, user.userId, ['login_failure']);
    expect(failure!.detail).toEqual({ reason: 'account_disabled', method: 'passkey' });
    const [row] = await s.t.database.db.select().from(passkeys).where(eq(passkeys.id, passkey.id));
    expect(row!.lastUsedAt).toBeNull();
  });

  it('refuses it when disabled before the options were asked for', async () => {
    const { user, authenticator } = await userWithPasskey();
    const admin = await registerAdmin(s.t);
    await s.gql(SET_USER_ACTIVE, { userId: user.userId, active: false }, { token: admin.accessToken });
    expect(await passkeySignIn(s, authenticator, { email: user.email })).toMatchObject({ __typename: 'InvalidCredentialsError' });
    expect(await eventsOf(s, user.userId, ['login_success'])).toEqual([]);
  });
});

describe('the purge', () => {
  it('deletes the WebAuthn challenges past their 5 minutes and keeps the live ones, which still sign in', async () => {
    const { user, authenticator } = await userWithPasskey();
    const stale = (await s.gql(START_SIGN_IN, { email: user.email })).data!.startPasskeySignIn;
    s.t.clock.advance(1);
    const live = (await s.gql(START_SIGN_IN, { email: user.email })).data!.startPasskeySignIn;
    s.t.clock.advance(299); // the stale one expires now (no longer accepted), the live one in a second
    const stored = async (options: { challenge: string }) =>
      (await s.t.database.db.select().from(webauthnChallenges).where(eq(webauthnChallenges.challengeHash, hashSecret(options.challenge)))).length;
    expect([await stored(stale), await stored(live)]).toEqual([1, 1]);

    const counts = await purgeExpired(s.t.services);
    expect(counts.webauthnChallenges).toBeGreaterThanOrEqual(1);
    expect([await stored(stale), await stored(live)]).toEqual([0, 1]);
    const res = await s.gql(FINISH_SIGN_IN, { response: authenticator.get(live) });
    expect(res.data?.finishPasskeySignIn.__typename, JSON.stringify(res)).toBe('AuthPayload');
  });
});

describe('startPasskeySignIn', () => {
  it("with an email, allows that account's passkeys only, and refuses another account's passkey", async () => {
    const owner = await userWithPasskey();
    const other = await userWithPasskey();
    expect(await allowedIds(owner.user.email)).toEqual([owner.authenticator.credentials[0]!.id]);
    const started = await s.gql(START_SIGN_IN, { email: owner.user.email.toUpperCase() });
    const response = other.authenticator.get(started.data!.startPasskeySignIn, {}, other.authenticator.credentials[0]);
    expect((await s.gql(FINISH_SIGN_IN, { response })).data!.finishPasskeySignIn.__typename).toBe('InvalidCredentialsError');
    expect((await passkeySignIn(s, owner.authenticator, { email: owner.user.email })).__typename).toBe('AuthPayload');
  });

  it('does not tell whether an email has an account or passkeys: one made-up id of the same shape, stable per email', async () => {
    const { authenticator } = await userWithPasskey();
    const withoutPasskey = await registerUser(s);
    const real = authenticator.credentials[0]!.id;
    const unknown = await allowedIds('nobody-here@example.com');
    const noPasskey = await allowedIds(withoutPasskey.email);
    for (const ids of [unknown, noPasskey]) {
      expect(ids).toHaveLength(1);
      expect(ids[0]!.length).toBe(real.length);
    }
    expect(await allowedIds('nobody-here@example.com')).toEqual(unknown);
    expect(noPasskey).not.toEqual(unknown);
    const options = (await s.gql(START_SIGN_IN, { email: 'nobody-here@example.com' })).data!.startPasskeySignIn;
    expect(options.allowCredentials[0]).toEqual({ id: unknown[0], type: 'public-key' });
  });

  it('without an email, answers discoverable options (no allowCredentials) for this RP, user verification required', async () => {
    const options = (await s.gql(START_SIGN_IN, {})).data!.startPasskeySignIn;
    expect(options).toMatchObject({ rpId: 'app.example', userVerification: 'required', timeout: 300_000 });
    expect(options.allowCredentials ?? []).toEqual([]);
  });

  it('with an email, asks for user verification too', async () => {
    const { user } = await userWithPasskey();
    expect((await s.gql(START_SIGN_IN, { email: user.email })).data!.startPasskeySignIn).toMatchObject({ userVerification: 'required' });
  });
});

describe('in refresh-cookie mode', () => {
  it('sets the refresh cookie and leaves refreshToken out of the body', async () => {
    const c = await serveTestApp({ ...PASSKEY_ENV, REFRESH_TOKEN_TRANSPORT: 'cookie' });
    try {
      const user = await registerUser(c);
      const authenticator = new SoftAuthenticator(ORIGIN);
      await addPasskey(c, user.accessToken, authenticator);
      const started = await c.gql(START_SIGN_IN, {});
      const response = authenticator.get(started.data!.startPasskeySignIn);
      const res = await fetch(`${c.server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: FINISH_SIGN_IN, variables: { response } }),
      });
      const body = (await res.json()) as any;
      expect(body.data.finishPasskeySignIn).toMatchObject({ __typename: 'AuthPayload', refreshToken: null });
      expect(res.headers.getSetCookie().join('\n')).toMatch(/authgraph_refresh=[\w-]+\.[\w-]+;.*HttpOnly/i);
    } finally {
      await c.close();
    }
  });
});
