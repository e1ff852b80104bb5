/**
 * An account keeps a way to sign in: a password, a linked identity or a passkey (which signs in
 * without a password). unlinkIdentity and removePasskey refuse to take the last one away
 * (LAST_SIGN_IN_METHOD), over a real port against a real OpenID Provider (oidc-provider on
 * loopback) and a software authenticator. On PostgreSQL, the two racing for the last two ways of
 * one account: one of them is refused.
 */
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identities, passkeys } from '../../src/db/schema.js';
import { onPostgres } from '../support/database.js';
import { startOpenIdProvider, type ProviderUser, type TestOpenIdProvider } from '../support/identity-providers.js';
import { holdInTransaction, interleaveAtAudit, waitForLockWaiters } from '../support/lock-waits.js';
import { loginUser, registerUser } from '../support/operations.js';
import { serveTestApp, type ServedApp } from '../support/served.js';
import { atProvider, callbackVariables, CLIENT, COMPLETE_LINK, MY_IDENTITIES, oidcUser, signIn as signInAt, socialEnv, start, UNLINK } from '../support/social-flow.js';
import { SoftAuthenticator } from '../support/webauthn-authenticator.js';
import { meWorks, REVOKE_OTHER_SESSIONS, sessionIdOf } from '../support/account.js';
import { addPasskey, FINISH_REGISTRATION, MY_PASSKEYS, ORIGIN, PASSKEY_ENV, passkeySignIn, REMOVE_PASSKEY, START_REGISTRATION, twoFactorSession } from './passkey-support.js';
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

  it("a session signed out while its unlinkIdentity waited (the owner added a passkey from another session) unlinks nothing, signs no one out, and is answered UNAUTHENTICATED", async () => {
    const account = await providerAccountWithPasskey();
    const owner = account.twoFactorToken;
    // A second session of the same user (say, a thief's), recently authenticated.
    const other = await passkeySignIn(s, account.authenticator);
    expect(other.__typename, JSON.stringify(other)).toBe('AuthPayload');
    const started = await s.gql(START_REGISTRATION, {}, { token: owner });
    const response = new SoftAuthenticator(ORIGIN).create(started.data!.startPasskeyRegistration);
    // The owner's added passkey commits first and signs the other session out; the unlink waited for the user's lock.
    const [added, unlinked] = await interleaveAtAudit(
      s,
      () => s.gql(FINISH_REGISTRATION, { response }, { token: owner }),
      () => s.gql(UNLINK, { id: account.identityId }, { token: other.accessToken }),
    );
    expect(added.data?.finishPasskeyRegistration.__typename, JSON.stringify(added)).toBe('Passkey');
    expect(await meWorks(s.t, other.accessToken)).toBe(false);
    // All at once, so a failure shows every consequence: the answer, the identity, the owner's session.
    expect({
      answer: unlinked.errors?.[0]?.extensions ?? unlinked.data,
      identities: (await identitiesOf(account.userId)).map((i) => i.id),
      ownerSignedIn: await meWorks(s.t, owner),
    }).toEqual({
      answer: { code: 'UNAUTHENTICATED', reason: 'REVOKED' },
      identities: [account.identityId],
      ownerSignedIn: true,
    });
  });

  it("a session signed out while its completeIdentityLink waited for the user's lock links nothing: its provider account never signs in to the user", async () => {
    const user = await registerUser(s);
    const thief = (await loginUser(s.t, user.email)).accessToken;
    const thiefAtProvider = oidcUser();
    const started = await start(s, 'corp', undefined, thief);
    const back = await atProvider({ idp }, started.authorizationUrl, thiefAtProvider);
    // The owner signs the thief's session out in a transaction that holds the user's row (as every
    // change of ways in does) and commits only once the link waits for that row.
    const hold = await holdInTransaction(s, async (tx) => {
      await tx.execute(sql`select 1 from users where id = ${user.userId} for update`);
      await tx.execute(sql`update sessions set revoked_at = now() where id = ${sessionIdOf(thief)}`);
    });
    const linking = s.gql(COMPLETE_LINK, callbackVariables('corp', back), { token: thief });
    expect(await waitForLockWaiters(s, 1, linking)).toBe(true);
    await hold.release();
    const linked = await linking;
    const later = await signIn(thiefAtProvider);
    expect({
      linked: linked.data?.completeIdentityLink?.__typename ?? linked.errors?.[0]?.extensions,
      identities: (await identitiesOf(user.userId)).length,
      thiefSignsInToTheUser: later.__typename === 'AuthPayload' && later.user.id === user.userId,
    }).toEqual({
      linked: { code: 'UNAUTHENTICATED', reason: 'REVOKED' },
      identities: 0,
      thiefSignsInToTheUser: false,
    });
  });
});
