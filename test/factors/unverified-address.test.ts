/**
 * Issue 14: "A mailbox alone must never be enough to switch a factor off". And an address nobody
 * has proven may be a pre-hijacker's: someone registered it, waiting for its owner. So adding a
 * second factor needs a verified address (else the pre-hijacker's factor would hold the owner out
 * after their password reset), and a password reset never removes a factor, whatever the state
 * of the address.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { passkeys, totpCredentials, users } from '../../src/db/schema.js';
import { NEW_PASSWORD, requestResetToken, requestVerificationToken, RESET_PASSWORD, VERIFY_EMAIL } from '../support/account.js';
import { registerUser } from '../support/operations.js';
import { serveTestApp, type ServedApp } from '../support/served.js';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.js';
import { SoftAuthenticator } from '../support/webauthn-authenticator.js';
import { FINISH_REGISTRATION, ORIGIN, PASSKEY_ENV, START_REGISTRATION } from './passkey-support.js';
import { enableTotp, ENROLL_TOTP, refusalCode } from './support.js';

let smtp: TestSmtpServer;
let s: ServedApp;
beforeAll(async () => {
  smtp = await startSmtpServer();
  s = await serveTestApp({ ...PASSKEY_ENV, SMTP_URL: smtp.url });
});
afterAll(async () => {
  await s?.close();
  await smtp?.close();
});

const pendingSecrets = (userId: string) => s.t.database.db.select().from(totpCredentials).where(eq(totpCredentials.userId, userId));
const storedPasskeys = (userId: string) => s.t.database.db.select().from(passkeys).where(eq(passkeys.userId, userId));

describe('adding a second factor to an account whose address is not verified', () => {
  it('is refused by enrollTotp with EMAIL_NOT_VERIFIED, and no secret is stored', async () => {
    const user = await registerUser(s);
    const res = await s.gql(ENROLL_TOTP, {}, { token: user.accessToken });
    expect(res.data).toBeNull();
    expect(refusalCode(res)).toBe('EMAIL_NOT_VERIFIED');
    expect(res.errors?.[0]?.message).toMatch(/before adding a second factor/);
    expect(await pendingSecrets(user.userId)).toEqual([]);
  });

  it('is refused by startPasskeyRegistration with EMAIL_NOT_VERIFIED, and no passkey can be added', async () => {
    const user = await registerUser(s);
    const res = await s.gql(START_REGISTRATION, {}, { token: user.accessToken });
    expect(res.data).toBeNull();
    expect(refusalCode(res)).toBe('EMAIL_NOT_VERIFIED');
    expect(await storedPasskeys(user.userId)).toEqual([]);
  });

  it('works once the owner has verified the address through the mailed link', async () => {
    const user = await registerUser(s);
    const verified = await s.gql(VERIFY_EMAIL, { token: await requestVerificationToken(s.t, smtp, user) });
    expect(verified.data?.verifyEmail, JSON.stringify(verified)).toMatchObject({ emailVerified: true });
    const started = await s.gql(START_REGISTRATION, {}, { token: user.accessToken });
    expect(started.errors, JSON.stringify(started)).toBeUndefined();
    const response = new SoftAuthenticator(ORIGIN).create(started.data!.startPasskeyRegistration);
    const finished = await s.gql(FINISH_REGISTRATION, { response }, { token: user.accessToken });
    expect(finished.data?.finishPasskeyRegistration.__typename, JSON.stringify(finished)).toBe('Passkey');
  });
});

describe('a password reset through a mailbox alone', () => {
  it("does not switch a factor off even where the address was never verified (a factor from before this rule): SecondFactorRequired, no tokens, the factor stays", async () => {
    const owner = await registerUser(s);
    await enableTotp(s, owner.accessToken);
    // The state of an account whose factor predates the rule: the address unverified.
    await s.t.database.db.update(users).set({ emailVerified: false }).where(eq(users.id, owner.userId));
    const token = await requestResetToken(s.t, smtp, owner.email);
    const res = await s.gql(RESET_PASSWORD, { token, password: NEW_PASSWORD });
    expect(res.data?.resetPassword, JSON.stringify(res)).toMatchObject({ __typename: 'SecondFactorRequired' });
    expect(JSON.stringify(res)).not.toMatch(/accessToken|refreshToken/);
    expect((await pendingSecrets(owner.userId)).map((row) => row.confirmedAt !== null)).toEqual([true]);
  });
});
