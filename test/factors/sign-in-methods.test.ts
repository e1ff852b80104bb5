/**
 * An account keeps a way to sign in: a password, a linked identity or a passkey (which signs in
 * without a password). unlinkIdentity and removePasskey refuse to take the last one away
 * (LAST_SIGN_IN_METHOD), over a real port against a real OpenID Provider (oidc-provider on
 * loopback) and a software authenticator. On PostgreSQL, the two racing for the last two ways of
 * one account: one of them is refused.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identities, passkeys } from '../../src/db/schema.js';
import { onPostgres } from '../support/database.js';
import { startOpenIdProvider, type ProviderUser, type TestOpenIdProvider } from '../support/identity-providers.js';
import { interleaveAtAudit } from '../support/lock-waits.js';
import { registerUser } from '../support/operations.js';
import { serveTestApp, type ServedApp } from '../support/served.js';
import { CLIENT, MY_IDENTITIES, oidcUser, signIn as signInAt, socialEnv, UNLINK } from '../support/social-flow.js';
import { SoftAuthenticator } from '../support/webauthn-authenticator.js';
import { addPasskey, MY_PASSKEYS, ORIGIN, PASSKEY_ENV, passkeySignIn, REMOVE_PASSKEY, twoFactorSession } from './passkey-support.js';
import { refusalCode } from './support.js';

let idp: TestOpenIdProvider;
let s: ServedApp;
beforeAll(async () => {
  idp = await startOpenIdProvider([CLIENT]);
  s = await serveTestApp({ ...socialEnv(idp.issuer), ...PASSKEY_ENV });
});
afterAll(async () => {
  await s?.close();
  await idp?.close();
});

const signIn = (user: ProviderUser) => signInAt(s, { idp }, user);

/** An account made through the provider (no password): its id, the session's token and its one identity's id. */
async function providerAccount() {
  const first = await signIn(oidcUser());
  expect(first.__typename, JSON.stringify(first)).toBe('AuthPayload');
  const token = first.accessToken as string;
  const [identity] = (await s.gql(MY_IDENTITIES, {}, { token })).data!.me.identities;
  return { userId: first.user.id as string, token, identityId: identity.id as string };
}

/** The same, with a passkey added: also a session that passed two factors with it (removePasskey needs one). */
async function providerAccountWithPasskey() {
  const account = await providerAccount();
  const authenticator = new SoftAuthenticator(ORIGIN);
  const passkey = await addPasskey(s, account.token, authenticator);
  return { ...account, authenticator, passkeyId: passkey.id, twoFactorToken: await twoFactorSession(s, authenticator) };
}

const identitiesOf = (userId: string) => s.t.database.db.select().from(identities).where(eq(identities.userId, userId));
const passkeysOf = (userId: string) => s.t.database.db.select().from(passkeys).where(eq(passkeys.userId, userId));

describe('the last way to sign in', () => {
  it('lets an account without a password unlink its only identity when it has a passkey, then refuses to remove that passkey (it still signs in)', async () => {
    const account = await providerAccountWithPasskey();
    const token = account.twoFactorToken;
    expect((await s.gql(UNLINK, { id: account.identityId }, { token })).data?.unlinkIdentity).toBe(true);
    expect(await identitiesOf(account.userId)).toEqual([]);

    const refused = await s.gql(REMOVE_PASSKEY, { id: account.passkeyId }, { token });
    expect(refusalCode(refused)).toBe('LAST_SIGN_IN_METHOD');
    expect(refused.data).toBeNull();
    expect((await s.gql(MY_PASSKEYS, {}, { token })).data!.me.passkeys.map((p: { id: string }) => p.id)).toEqual([account.passkeyId]);
    const again = await passkeySignIn(s, account.authenticator);
    expect(again.__typename, JSON.stringify(again)).toBe('AuthPayload');
    expect(again.user.id).toBe(account.userId);
  });

  it('refuses to unlink the only identity of an account without a password or passkey', async () => {
    const account = await providerAccount();
    const refused = await s.gql(UNLINK, { id: account.identityId }, { token: account.token });
    expect(refusalCode(refused)).toBe('LAST_SIGN_IN_METHOD');
    expect((await identitiesOf(account.userId)).map((i) => i.id)).toEqual([account.identityId]);
  });

  it('lets a user with a password remove their only passkey', async () => {
    const user = await registerUser(s);
    const authenticator = new SoftAuthenticator(ORIGIN);
    const passkey = await addPasskey(s, user.accessToken, authenticator);
    const token = await twoFactorSession(s, authenticator);
    expect((await s.gql(REMOVE_PASSKEY, { id: passkey.id }, { token })).data?.removePasskey).toBe(true);
    expect(await passkeysOf(user.userId)).toEqual([]);
  });
});

describe.runIf(onPostgres)('unlinkIdentity and removePasskey racing for the last two ways in, on PostgreSQL', () => {
  it('lets one of them through and refuses the other: the account keeps a way to sign in', async () => {
    const account = await providerAccountWithPasskey();
    // Both stop at their audit write, inside their transactions, having checked what is left.
    // One session makes both changes: from two, the unlink would sign the other one out, and the
    // removal would be refused for that (UNAUTHENTICATED) before its last-way check.
    const [unlinked, removed] = await interleaveAtAudit(
      s,
      () => s.gql(UNLINK, { id: account.identityId }, { token: account.twoFactorToken }),
      () => s.gql(REMOVE_PASSKEY, { id: account.passkeyId }, { token: account.twoFactorToken }),
    );
    expect(unlinked.data?.unlinkIdentity, JSON.stringify(unlinked)).toBe(true);
    expect(refusalCode(removed)).toBe('LAST_SIGN_IN_METHOD');
    expect(await identitiesOf(account.userId)).toEqual([]);
    expect((await passkeysOf(account.userId)).map((p) => p.id)).toEqual([account.passkeyId]);
  });
});
