/**
 * Accounts and password reset meet social sign-in (issue 15): an account made through a
 * provider has no password until a reset sets one (mailed through a real SMTP server), and a
 * reset of an account whose address nobody had proven unlinks the identities on it, so that
 * whoever made or linked them cannot keep signing in to the mailbox owner's account.
 */
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authEvents, identities } from '../../src/db/schema.js';
import { loginAnswer, NEW_PASSWORD, RESET_PASSWORD, requestResetToken } from '../support/account.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { startOpenIdProvider, type TestOpenIdProvider } from '../support/identity-providers.js';
import { registerUser } from '../support/operations.js';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.js';
import { CLIENT, link, MY_IDENTITIES, oidcUser, signIn, socialEnv, UNLINK } from '../support/social-flow.js';

let smtp: TestSmtpServer;
let idp: TestOpenIdProvider;
let t: TestApp;

beforeAll(async () => {
  smtp = await startSmtpServer();
  idp = await startOpenIdProvider([CLIENT]);
  t = await createTestApp({ ...socialEnv(idp.issuer), SMTP_URL: smtp.url });
});

afterAll(async () => {
  await t?.services.tasks.idle();
  await t?.close();
  await idp?.close();
  await smtp?.close();
});

/** Requests a reset mail for the address, follows its link and sets NEW_PASSWORD: the answer. */
async function resetByMail(email: string) {
  const token = await requestResetToken(t, smtp, email);
  const res = await t.gql(RESET_PASSWORD, { token, password: NEW_PASSWORD });
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!.resetPassword;
}

const identitiesOf = (userId: string) => t.database.db.select().from(identities).where(eq(identities.userId, userId));

describe('password reset of an account made through a provider', () => {
  it('sets a password, after which password login works and the last identity may be unlinked', async () => {
    const user = oidcUser();
    const made = await signIn(t, { idp }, user);
    expect(made.__typename).toBe('AuthPayload');
    expect(await loginAnswer(t, user.email!, NEW_PASSWORD)).toBe('InvalidCredentialsError');

    const reset = await resetByMail(user.email!);
    expect(reset).toMatchObject({ __typename: 'AuthPayload', user: { id: made.user.id } });
    expect(await loginAnswer(t, user.email!, NEW_PASSWORD)).toBe('AuthPayload');
    // The provider had vouched for the address: its identity stays, and still signs in.
    expect((await signIn(t, { idp }, user)).user?.id).toBe(made.user.id);

    const token = reset.accessToken as string;
    const [identity] = (await t.gql(MY_IDENTITIES, {}, { token })).data!.me.identities;
    const unlinked = await t.gql(UNLINK, { id: identity.id }, { token });
    expect(unlinked.errors, JSON.stringify(unlinked.errors)).toBeUndefined();
    expect(unlinked.data?.unlinkIdentity).toBe(true);
    expect(await identitiesOf(made.user.id)).toEqual([]);
    expect(await loginAnswer(t, user.email!, NEW_PASSWORD)).toBe('AuthPayload');
  });
});

describe('account pre-hijacking', () => {
  it("unlinks a provider identity that made an account for an unverified address when the address's owner resets the password", async () => {
    // The attacker's provider account claims the victim's address, unverified.
    const attacker = oidcUser({ email_verified: false });
    const made = await signIn(t, { idp }, attacker);
    expect(made).toMatchObject({ __typename: 'AuthPayload', user: { emailVerified: false } });

    // The victim finds the address taken and recovers the account through the mailbox.
    const reset = await resetByMail(attacker.email!);
    expect(reset).toMatchObject({ __typename: 'AuthPayload', user: { id: made.user.id, emailVerified: true } });

    expect(await identitiesOf(made.user.id)).toEqual([]);
    // The attacker's identity no longer opens the account; it is a stranger with a taken address.
    expect(await signIn(t, { idp }, attacker)).toEqual({ __typename: 'AccountExistsError', code: 'ACCOUNT_EXISTS' });
    const events = await t.database.db
      .select()
      .from(authEvents)
      .where(and(eq(authEvents.userId, made.user.id), eq(authEvents.type, 'identity_unlinked')));
    expect(events.map((e) => e.detail)).toEqual([expect.objectContaining({ provider: 'corp', reason: 'password_reset_of_unverified_email' })]);
  });

  it('unlinks an identity linked to a password account with an unverified address when its owner resets the password', async () => {
    // The attacker registers the victim's address with a password and links their own provider account.
    const squatted = await registerUser(t);
    const attacker = oidcUser({ email: 'attacker-own@example.com' });
    expect((await link(t, { idp }, squatted.accessToken, attacker)).__typename).toBe('Identity');

    await resetByMail(squatted.email);
    expect(await identitiesOf(squatted.userId)).toEqual([]);
    const again = await signIn(t, { idp }, attacker);
    expect(again.__typename).toBe('AuthPayload');
    expect(again.user.id).not.toBe(squatted.userId); // a new account of the attacker's own address
  });

  it('keeps the identities of an account whose address was verified', async () => {
    const user = oidcUser();
    const made = await signIn(t, { idp }, user);
    await resetByMail(user.email!);
    expect((await identitiesOf(made.user.id)).map((i) => i.subject)).toEqual([user.sub]);
  });
});
