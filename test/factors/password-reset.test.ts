/**
 * A password reset does not bypass the second factor: for a user with one, resetPassword sets
 * the password and revokes every session but hands out no tokens (SecondFactorRequired, finished
 * by completeSignIn); later sign-ins still ask for the factor, which stays on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NEW_PASSWORD, requestResetToken } from '../support/account.js';
import { ME_ID, registerUser } from '../support/operations.js';
import { serveTestApp, type ServedApp } from '../support/served.js';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.js';
import { decodeJwt } from 'jose';
import { SoftAuthenticator } from '../support/webauthn-authenticator.js';
import { addPasskey, ORIGIN, PASSKEY_ENV } from './passkey-support.js';
import { COMPLETE_SIGN_IN, enableTotp, MY_FACTORS, passwordStep, refusalCode, totpCode } from './support.js';

const RESET = `mutation Reset($token: String!, $password: String!) {
  resetPassword(token: $token, newPassword: $password) {
    __typename
    ... on AuthPayload { accessToken }
    ... on SecondFactorRequired { challenge methods expiresIn passkeyOptions }
    ... on Error { code }
  }
}`;

let smtp: TestSmtpServer;
let s: ServedApp;
beforeAll(async () => {
  smtp = await startSmtpServer();
  s = await serveTestApp({ SMTP_URL: smtp.url, ...PASSKEY_ENV });
});
afterAll(async () => {
  await s?.close();
  await smtp?.close();
});

describe('resetPassword of a user with a second factor', () => {
  it('sets the password and revokes every session, but answers SecondFactorRequired and no tokens', async () => {
    const user = await registerUser(s);
    const { secret } = await enableTotp(s, user.accessToken);
    s.t.clock.advance(90);
    const token = await requestResetToken(s.t, smtp, user.email);
    const res = await s.gql(RESET, { token, password: NEW_PASSWORD });
    expect(res.data?.resetPassword).toMatchObject({ __typename: 'SecondFactorRequired', methods: ['TOTP', 'RECOVERY_CODE'], expiresIn: 300 });
    expect(JSON.stringify(res)).not.toContain('accessToken');
    expect(refusalCode(await s.gql(ME_ID, {}, { token: user.accessToken }))).toBe('UNAUTHENTICATED');
    // Finished like a sign-in, with a code.
    const done = await s.gql(COMPLETE_SIGN_IN, { challenge: res.data!.resetPassword.challenge, code: totpCode(secret, s.t.clock.now()) });
    expect(done.data?.completeSignIn.__typename, JSON.stringify(done)).toBe('AuthPayload');
    const session = done.data!.completeSignIn.accessToken;
    // The factor is still on, and the next sign-in (with the new password) asks for it again.
    expect((await s.gql(MY_FACTORS, {}, { token: session })).data?.me.secondFactors).toEqual(['TOTP', 'RECOVERY_CODE']);
    expect(await passwordStep(s, user.email, NEW_PASSWORD)).toEqual(expect.any(String));
  });

  it("answers passkeyOptions for a user with a passkey: request options naming the user's credentials, which finish the sign-in", async () => {
    const user = await registerUser(s);
    const authenticator = new SoftAuthenticator(ORIGIN);
    await addPasskey(s, user.accessToken, authenticator);
    const token = await requestResetToken(s.t, smtp, user.email);
    const res = await s.gql(RESET, { token, password: NEW_PASSWORD });
    const answer = res.data?.resetPassword;
    expect(answer, JSON.stringify(res)).toMatchObject({ __typename: 'SecondFactorRequired', methods: ['PASSKEY'], expiresIn: 300 });
    expect(answer.passkeyOptions).toMatchObject({ rpId: 'app.example', challenge: expect.any(String), userVerification: 'preferred' });
    expect(answer.passkeyOptions.allowCredentials.map((c: { id: string }) => c.id)).toEqual([authenticator.credentials[0]!.id]);
    const done = await s.gql(COMPLETE_SIGN_IN, { challenge: answer.challenge, passkey: authenticator.get(answer.passkeyOptions) });
    expect(done.data?.completeSignIn.__typename, JSON.stringify(done)).toBe('AuthPayload');
    expect(decodeJwt(done.data!.completeSignIn.accessToken).amr).toEqual(['pwd', 'hwk', 'user']);
  });

  it('still signs a user without a factor in, as before', async () => {
    const user = await registerUser(s);
    const token = await requestResetToken(s.t, smtp, user.email);
    const res = await s.gql(RESET, { token, password: NEW_PASSWORD });
    expect(res.data?.resetPassword.__typename).toBe('AuthPayload');
  });
});
