/**
 * Social sign-in honours the second factor, over a real port against a real OpenID Provider
 * (oidc-provider on loopback), frozen clock: a linked identity of a user with TOTP answers
 * SecondFactorRequired and opens no session; completeSignIn finishes it (amr fed+otp) under the
 * rules of the password path (5 wrong codes kill the challenge, wrong codes count toward the
 * account lockout); unlinking the identity kills its challenges.
 */
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessions } from '../../src/db/schema.js';
import { ADMIN_STATS } from '../support/authz.js';
import { inspect } from '../support/forge.js';
import { startOpenIdProvider, type ProviderUser, type TestOpenIdProvider } from '../support/identity-providers.js';
import { GOOD_PASSWORD, registerUser } from '../support/operations.js';
import { serveTestApp, type ServedApp } from '../support/served.js';
import { CLIENT, link, MY_IDENTITIES, oidcUser, signIn as signInAt, socialEnv, UNLINK } from '../support/social-flow.js';
import { SoftAuthenticator } from '../support/webauthn-authenticator.js';
import { addPasskey, ORIGIN, PASSKEY_ENV } from './passkey-support.js';
import { CHALLENGED, COMPLETE_SIGN_IN, DISABLE_TOTP, enableTotp, eventsOf, passwordStep, refusalCode, totpCode } from './support.js';

let idp: TestOpenIdProvider;
let s: ServedApp; // RATE_LIMITS=off (the test default)
let locking: ServedApp; // RATE_LIMITS=on, same database
let strict: ServedApp; // REQUIRE_SECOND_FACTOR_FOR_ROLES=admin, same database
beforeAll(async () => {
  idp = await startOpenIdProvider([CLIENT]);
  s = await serveTestApp({ ...socialEnv(idp.issuer), ...PASSKEY_ENV });
  // Per-IP limits out of the way: every request of these tests comes from 127.0.0.1.
  locking = await serveTestApp(
    { ...socialEnv(idp.issuer), RATE_LIMITS: 'on', RATE_LIMIT_SOCIAL_SIGN_IN_IP: '1000/60', RATE_LIMIT_SECOND_FACTOR_IP: '1000/60' },
    s.t.database,
  );
  strict = await serveTestApp({ ...socialEnv(idp.issuer), REQUIRE_SECOND_FACTOR_FOR_ROLES: 'admin' }, s.t.database);
});
afterAll(async () => {
  await strict?.close();
  await locking?.close();
  await s?.close();
  await idp?.close();
});

const signIn = (app: ServedApp, user: ProviderUser) => signInAt(app, { idp }, user);
const complete = (app: ServedApp, challenge: string, code: string) => app.gql(COMPLETE_SIGN_IN, { challenge, code });
const typeOf = (res: { data?: any }) => res.data?.completeSignIn?.__typename ?? JSON.stringify(res);
const sessionCount = async (app: ServedApp, userId: string) =>
  (await app.t.database.db.select().from(sessions).where(and(eq(sessions.userId, userId)))).length;

/** An account made through the provider, TOTP turned on, the clock moved past the confirmation code's steps. */
async function providerUserWithTotp(app: ServedApp = s) {
  const user = oidcUser();
  const first = await signIn(app, user);
  expect(first.__typename).toBe('AuthPayload');
  const { secret, codes } = await enableTotp(app, first.accessToken);
  app.t.clock.advance(90);
  return { user, userId: first.user.id as string, email: user.email!, secret, codes, now: () => app.t.clock.now() };
}

/** The provider step of a user with a factor: expects SecondFactorRequired and returns its challenge. */
async function providerStep(app: ServedApp, user: ProviderUser): Promise<string> {
  const answer = await signIn(app, user);
  expect(answer.__typename, JSON.stringify(answer)).toBe('SecondFactorRequired');
  return answer.challenge;
}

describe('completeSocialSignIn of a linked identity whose user has a second factor', () => {
  it('answers SecondFactorRequired (challenge, methods, 300 s, no passkey options) and opens no session', async () => {
    const account = await providerUserWithTotp();
    const before = await sessionCount(s, account.userId);
    const answer = await signIn(s, account.user);
    expect(answer).toEqual(CHALLENGED);
    expect(JSON.stringify(answer)).not.toMatch(/accessToken|refreshToken/);
    expect(await sessionCount(s, account.userId)).toBe(before);
  });

  it("answers passkeyOptions for a user with a passkey: request options naming the user's credentials, which finish the sign-in (amr fed, hwk, user)", async () => {
    const user = oidcUser();
    const first = await signIn(s, user);
    expect(first.__typename).toBe('AuthPayload');
    const authenticator = new SoftAuthenticator(ORIGIN);
    await addPasskey(s, first.accessToken, authenticator);
    const answer = await signIn(s, user);
    expect(answer, JSON.stringify(answer)).toMatchObject({ __typename: 'SecondFactorRequired', methods: ['PASSKEY'], expiresIn: 300 });
    expect(answer.passkeyOptions).toMatchObject({ rpId: 'app.example', challenge: expect.any(String), userVerification: 'preferred' });
    expect(answer.passkeyOptions.allowCredentials.map((c: { id: string }) => c.id)).toEqual([authenticator.credentials[0]!.id]);
    const res = await s.gql(COMPLETE_SIGN_IN, { challenge: answer.challenge, passkey: authenticator.get(answer.passkeyOptions) });
    expect(typeOf(res)).toBe('AuthPayload');
    expect(inspect(res.data!.completeSignIn.accessToken).claims.amr).toEqual(['fed', 'hwk', 'user']);
  });

  it('is finished by completeSignIn with a TOTP code: a session with amr ["fed","otp"], audited as a social sign-in', async () => {
    const account = await providerUserWithTotp();
    const challenge = await providerStep(s, account.user);
    const res = await complete(s, challenge, totpCode(account.secret, account.now()));
    expect(typeOf(res)).toBe('AuthPayload');
    expect(res.data!.completeSignIn.user.id).toBe(account.userId);
    expect(inspect(res.data!.completeSignIn.accessToken).claims.amr).toEqual(['fed', 'otp']);
    // The account was made by its first sign-in ('register'): this is its one login_success.
    const events = await eventsOf(s, account.userId, ['login_success']);
    expect(events.map((e) => e.detail)).toEqual([expect.objectContaining({ secondFactor: 'TOTP', method: 'social' })]);
  });

  it('counts the provider and the code as two factors: an admin so signed in passes REQUIRE_SECOND_FACTOR_FOR_ROLES, with the provider alone not', async () => {
    const account = await providerUserWithTotp(strict);
    await strict.t.services.roleAdmin.grantRole({ kind: 'operator' }, account.userId, 'admin');
    await strict.t.services.changes.sync();
    const challenge = await providerStep(strict, account.user);
    const res = await complete(strict, challenge, totpCode(account.secret, account.now()));
    expect(typeOf(res)).toBe('AuthPayload');
    const stats = await strict.gql(ADMIN_STATS, {}, { token: res.data!.completeSignIn.accessToken });
    expect(stats.errors, JSON.stringify(stats)).toBeUndefined();
    // The same admin signed in by the provider alone (factor turned off): one factor, refused.
    strict.t.clock.advance(90);
    const off = await strict.gql(DISABLE_TOTP, {}, { token: res.data!.completeSignIn.accessToken });
    expect(off.errors, JSON.stringify(off)).toBeUndefined();
    const alone = await signIn(strict, account.user);
    expect(alone.__typename).toBe('AuthPayload');
    expect(refusalCode(await strict.gql(ADMIN_STATS, {}, { token: alone.accessToken }))).toBe('SECOND_FACTOR_REQUIRED');
  });

  it('asks for it on an account with a password and a linked identity too; a recovery code finishes it (amr ["fed","otp"])', async () => {
    const account = await registerUser(s);
    const user = oidcUser();
    expect((await link(s, { idp }, account.accessToken, user)).__typename).toBe('Identity');
    const { codes } = await enableTotp(s, account.accessToken);
    const challenge = await providerStep(s, user);
    const res = await complete(s, challenge, codes[0]!);
    expect(typeOf(res)).toBe('AuthPayload');
    expect(res.data!.completeSignIn.user.id).toBe(account.userId);
    expect(inspect(res.data!.completeSignIn.accessToken).claims.amr).toEqual(['fed', 'otp']);
  });

  it('spends the challenge: it finishes one sign-in only', async () => {
    const account = await providerUserWithTotp();
    const challenge = await providerStep(s, account.user);
    expect(typeOf(await complete(s, challenge, totpCode(account.secret, account.now())))).toBe('AuthPayload');
    s.t.clock.advance(30);
    expect(typeOf(await complete(s, challenge, totpCode(account.secret, account.now())))).toBe('InvalidSecondFactorError');
  });

  it('kills the challenge after 5 wrong codes (RATE_LIMITS=off), each audited as a failure; a new provider sign-in gives a new one', async () => {
    const account = await providerUserWithTotp();
    const challenge = await providerStep(s, account.user);
    for (let i = 0; i < 5; i++) expect(typeOf(await complete(s, challenge, `00000${i}`))).toBe('InvalidSecondFactorError');
    expect(typeOf(await complete(s, challenge, totpCode(account.secret, account.now())))).toBe('InvalidSecondFactorError');
    expect(await eventsOf(s, account.userId, ['second_factor_failure'])).toHaveLength(5);
    expect(typeOf(await complete(s, await providerStep(s, account.user), totpCode(account.secret, account.now())))).toBe('AuthPayload');
  });

  it('refuses the challenge after 5 minutes', async () => {
    const account = await providerUserWithTotp();
    const challenge = await providerStep(s, account.user);
    s.t.clock.advance(301);
    expect(typeOf(await complete(s, challenge, totpCode(account.secret, account.now())))).toBe('InvalidSecondFactorError');
  });

  it('refuses the challenge once its identity is unlinked (bound to the identity that signed in)', async () => {
    const account = await registerUser(s);
    const user = oidcUser();
    expect((await link(s, { idp }, account.accessToken, user)).__typename).toBe('Identity');
    const { secret, codes } = await enableTotp(s, account.accessToken);
    s.t.clock.advance(90);
    const challenge = await providerStep(s, user);
    // The owner, signed in with password and code, unlinks the provider meanwhile.
    const owner = await complete(s, await passwordStep(s, account.email, GOOD_PASSWORD), codes[0]!);
    const token = owner.data!.completeSignIn.accessToken as string;
    const [identity] = (await s.gql(MY_IDENTITIES, {}, { token })).data!.me.identities;
    expect((await s.gql(UNLINK, { id: identity.id }, { token })).data?.unlinkIdentity).toBe(true);
    expect(typeOf(await complete(s, challenge, totpCode(secret, s.t.clock.now())))).toBe('InvalidSecondFactorError');
  });

  it('counts wrong codes toward the account lockout: locked, even the right code is RateLimitedError', async () => {
    const account = await providerUserWithTotp(locking);
    const challenge = await providerStep(locking, account.user);
    for (let i = 0; i < 5; i++) expect(typeOf(await complete(locking, challenge, `99999${i}`))).toBe('InvalidSecondFactorError');
    const fresh = await providerStep(locking, account.user);
    expect(typeOf(await complete(locking, fresh, totpCode(account.secret, account.now())))).toBe('RateLimitedError');
  });

  it('signs in with the provider alone again (amr ["fed"]) once the factor is turned off', async () => {
    const account = await providerUserWithTotp();
    const signedIn = await complete(s, await providerStep(s, account.user), totpCode(account.secret, account.now()));
    const token = signedIn.data!.completeSignIn.accessToken as string;
    const off = await s.gql(DISABLE_TOTP, {}, { token });
    expect(off.data?.disableTotp, JSON.stringify(off)).toBe(true);
    const answer = await signIn(s, account.user);
    expect(answer.__typename).toBe('AuthPayload');
    expect(inspect(answer.accessToken).claims.amr).toEqual(['fed']);
  });
});
