/**
 * A passkey as the second factor: after the password, SecondFactorRequired carries request
 * options for the user's passkeys and completeSignIn takes an assertion to them; reauthenticate
 * takes one to startPasskeyReauthentication's options. Over a real port, a software authenticator.
 */
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GOOD_PASSWORD, registerUser } from '../support/operations.js';
import { serveTestApp, type ServedApp } from '../support/served.js';
import { SoftAuthenticator, type Bend } from '../support/webauthn-authenticator.js';
import { addPasskey, ORIGIN, PASSKEY_ENV, passkeySignIn, REMOVE_PASSKEY } from './passkey-support.js';
import { COMPLETE_SIGN_IN, enableTotp, eventsOf, LOGIN_2FA, REAUTHENTICATE } from './support.js';

let s: ServedApp;
beforeAll(async () => {
  s = await serveTestApp(PASSKEY_ENV);
});
afterAll(async () => {
  await s?.close();
});

async function userWithPasskey() {
  const user = await registerUser(s);
  const authenticator = new SoftAuthenticator(ORIGIN);
  const passkey = await addPasskey(s, user.accessToken, authenticator);
  return { user, authenticator, passkey };
}

/** The password step: SecondFactorRequired with its challenge, methods and passkeyOptions. */
async function passwordStep(email: string) {
  const res = await s.gql(LOGIN_2FA, { input: { email, password: GOOD_PASSWORD } });
  expect(res.data?.login.__typename, JSON.stringify(res)).toBe('SecondFactorRequired');
  return res.data!.login as { challenge: string; methods: string[]; passkeyOptions: any };
}

const complete = async (challenge: string, passkey: unknown) => (await s.gql(COMPLETE_SIGN_IN, { challenge, passkey })).data!.completeSignIn;

describe('completeSignIn with a passkey', () => {
  it("answers the password with options for the user's passkeys, and an assertion to them opens a session of pwd, hwk, user", async () => {
    const { user, authenticator } = await userWithPasskey();
    const step = await passwordStep(user.email);
    expect(step.methods).toEqual(['PASSKEY']);
    expect(step.passkeyOptions).toMatchObject({ rpId: 'app.example', userVerification: 'preferred' });
    expect(step.passkeyOptions.allowCredentials.map((c: { id: string }) => c.id)).toEqual([authenticator.credentials[0]!.id]);
    const done = await complete(step.challenge, authenticator.get(step.passkeyOptions));
    expect(done.__typename, JSON.stringify(done)).toBe('AuthPayload');
    expect(decodeJwt(done.accessToken)).toMatchObject({ sub: user.userId, amr: ['pwd', 'hwk', 'user'] });
    const success = await eventsOf(s, user.userId, ['login_success']);
    expect(success.at(-1)!.detail).toMatchObject({ secondFactor: 'PASSKEY' });
  });

  it('has null passkeyOptions for a user with TOTP and no passkey', async () => {
    const user = await registerUser(s);
    await enableTotp(s, user.accessToken);
    expect((await passwordStep(user.email)).passkeyOptions).toBeNull();
  });

  it.each<[string, Bend]>([
    ['another origin', { origin: 'https://evil.example' }],
    ['another RP ID', { rpId: 'evil.example' }],
    ['a broken signature', { breakSignature: true }],
    ['a counter gone backwards', { counter: 0 }],
  ])('refuses an assertion with %s (InvalidSecondFactorError), audited', async (_what, bend) => {
    const { user, authenticator } = await userWithPasskey();
    if (bend.counter !== undefined) {
      const first = await passwordStep(user.email);
      expect((await complete(first.challenge, authenticator.get(first.passkeyOptions, { counter: 7 }))).__typename).toBe('AuthPayload');
    }
    const step = await passwordStep(user.email);
    expect(await complete(step.challenge, authenticator.get(step.passkeyOptions, bend))).toMatchObject({ __typename: 'InvalidSecondFactorError' });
    const failures = await eventsOf(s, user.userId, ['second_factor_failure']);
    expect(failures.at(-1)!.detail).toMatchObject({ use: 'sign_in', method: 'PASSKEY' });
  });

  it("refuses an assertion to another sign-in's options, or to passwordless options", async () => {
    const { user, authenticator } = await userWithPasskey();
    const mine = await passwordStep(user.email);
    const other = await passwordStep(user.email);
    expect(await complete(mine.challenge, authenticator.get(other.passkeyOptions))).toMatchObject({ __typename: 'InvalidSecondFactorError' });
    const passwordless = (await s.gql(`mutation { startPasskeySignIn }`)).data!.startPasskeySignIn;
    expect(await complete(mine.challenge, authenticator.get(passwordless))).toMatchObject({ __typename: 'InvalidSecondFactorError' });
    // The challenge is still good for a right assertion (two wrong guesses counted of five).
    const again = (await s.gql(LOGIN_2FA, { input: { email: user.email, password: GOOD_PASSWORD } })).data!.login;
    expect((await complete(again.challenge, authenticator.get(again.passkeyOptions))).__typename).toBe('AuthPayload');
  });

  it("refuses another user's passkey, and a removed one", async () => {
    const victim = await userWithPasskey();
    const attacker = await userWithPasskey();
    const step = await passwordStep(victim.user.email);
    const forged = attacker.authenticator.get(step.passkeyOptions, {}, attacker.authenticator.credentials[0]);
    expect(await complete(step.challenge, forged)).toMatchObject({ __typename: 'InvalidSecondFactorError' });
    const { user, authenticator, passkey } = victim;
    const pending = await passwordStep(user.email);
    // The passkey is removed (from a session that passed two factors with it) while a sign-in waits.
    const { accessToken } = await passkeySignIn(s, authenticator);
    expect((await s.gql(REMOVE_PASSKEY, { id: passkey.id }, { token: accessToken })).data!.removePasskey).toBe(true);
    expect(await complete(pending.challenge, authenticator.get(pending.passkeyOptions))).toMatchObject({ __typename: 'InvalidSecondFactorError' });
  });
});

describe('reauthenticate with a passkey', () => {
  it('takes an assertion to startPasskeyReauthentication, moving auth_time and adding hwk, user to the amr', async () => {
    const { user, authenticator } = await userWithPasskey();
    s.t.clock.advance(600);
    const options = (await s.gql(`mutation { startPasskeyReauthentication }`, {}, { token: user.accessToken })).data!.startPasskeyReauthentication;
    expect(options.allowCredentials).toHaveLength(1);
    const res = await s.gql(REAUTHENTICATE, { passkey: authenticator.get(options) }, { token: user.accessToken });
    expect(res.data!.reauthenticate, JSON.stringify(res)).toMatchObject({ __typename: 'Reauthentication', amr: ['pwd', 'hwk', 'user'], authTime: s.t.clock.now().toISOString() });
    const replay = await s.gql(REAUTHENTICATE, { passkey: authenticator.get(options) }, { token: user.accessToken });
    expect(replay.data!.reauthenticate.__typename).toBe('InvalidSecondFactorError');
  });

  it("counts assertions that do not verify toward the session's cap of 5 wrong proofs: a right one is refused after it", async () => {
    const { user, authenticator } = await userWithPasskey();
    const options = async () => (await s.gql(`mutation { startPasskeyReauthentication }`, {}, { token: user.accessToken })).data!.startPasskeyReauthentication;
    const reauth = async (passkey: unknown) => (await s.gql(REAUTHENTICATE, { passkey }, { token: user.accessToken })).data!.reauthenticate.__typename;
    for (let i = 0; i < 5; i++) expect(await reauth(authenticator.get(await options(), { origin: 'https://evil.example' }))).toBe('InvalidSecondFactorError');
    expect(await reauth(authenticator.get(await options()))).toBe('InvalidSecondFactorError');
    const refused = (await eventsOf(s, user.userId, ['reauthentication'])).map((e) => e.detail as Record<string, unknown>);
    expect(refused.map((d) => d.failed).sort()).toEqual(['guesses_exhausted', ...Array(5).fill('wrong_passkey')]);
  });

  it("refuses an assertion to another user's options, and answers null options to a user without passkeys", async () => {
    const owner = await userWithPasskey();
    const other = await registerUser(s);
    expect((await s.gql(`mutation { startPasskeyReauthentication }`, {}, { token: other.accessToken })).data!.startPasskeyReauthentication).toBeNull();
    const options = (await s.gql(`mutation { startPasskeyReauthentication }`, {}, { token: owner.user.accessToken })).data!.startPasskeyReauthentication;
    const res = await s.gql(REAUTHENTICATE, { passkey: owner.authenticator.get(options) }, { token: other.accessToken });
    expect(res.data!.reauthenticate.__typename).toBe('InvalidSecondFactorError');
  });
});
