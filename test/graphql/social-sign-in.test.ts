/**
 * Social sign-in (issue 15) through GraphQL, against a real OpenID Provider (oidc-provider) and a
 * stand-in of GitHub's documented endpoints, both on loopback: the whole flow as a frontend and
 * a browser run it, the linking rule, and the attacks on state, code, ID token and redirect URI.
 */
import { randomBytes } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../../src/db/client.js';
import { authEvents, identities, users } from '../../src/db/schema.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { inspect } from '../support/forge.js';
import { openTestDatabase } from '../support/database.js';
import {
  REDIRECT_URI,
  startGitHubStandIn,
  startOpenIdProvider,
  type GitHubUser,
  type ProviderUser,
  type TestGitHub,
  type TestOpenIdProvider,
} from '../support/identity-providers.js';
import { GOOD_PASSWORD, LOGIN, loginUser, registerUser, uniqueEmail } from '../support/operations.js';
import { countUsers, userRow } from '../support/rows.js';
import { meWorks, refreshWorks } from '../support/account.js';
import {
  atProvider as atProviderOf,
  callbackVariables,
  CLIENT,
  COMPLETE_LINK,
  complete,
  FAILED,
  START,
  START_LINK,
  githubUser,
  GITHUB_CLIENT,
  INTRUDER,
  MY_IDENTITIES,
  oidcUser,
  socialEnv as baseSocialEnv,
  start,
  UNLINK,
  signIn as signInAt,
} from '../support/social-flow.js';

const STATE_TTL = 600;

let database: DatabaseHandle;
let idp: TestOpenIdProvider;
let github: TestGitHub;
let t: TestApp;

function socialEnv(issuer: string, gh: TestGitHub): Record<string, string> {
  return {
    ...baseSocialEnv(issuer, gh),
    // mirror: a second entry for the same IdP and client (say, other scopes); a state of one is no state of the other.
    SOCIAL_PROVIDERS: 'corp,github,mirror',
    SOCIAL_MIRROR_CLIENT_ID: CLIENT.id,
    SOCIAL_MIRROR_CLIENT_SECRET: CLIENT.secret,
    SOCIAL_MIRROR_ISSUER: issuer,
    SOCIAL_STATE_TTL: String(STATE_TTL),
  };
}

beforeAll(async () => {
  database = await openTestDatabase();
  idp = await startOpenIdProvider([CLIENT, INTRUDER]);
  github = await startGitHubStandIn(GITHUB_CLIENT);
  t = await createTestApp(socialEnv(idp.issuer, github), database);
});

afterAll(async () => {
  await t?.close();
  await idp?.close();
  await github?.close();
  await database?.close();
});

const atProvider = (authorizationUrl: string, user: ProviderUser | GitHubUser) => atProviderOf({ idp, github }, authorizationUrl, user);
const signIn = (user: ProviderUser | GitHubUser, provider?: string) => signInAt(t, { idp, github }, user, provider);

const linkFailures = (userId: string) =>
  database.db.select().from(authEvents).where(and(eq(authEvents.userId, userId), eq(authEvents.type, 'identity_link_failure')));

const identityRows = (provider: string, subject: string) =>
  database.db.select().from(identities).where(and(eq(identities.provider, provider), eq(identities.subject, subject)));

describe('social sign-in through an OpenID Provider', () => {
  it('lists the configured providers', async () => {
    const res = await t.gql('{ socialProviders { id name } }');
    expect(res.data?.socialProviders).toEqual([
      { id: 'corp', name: 'Corp SSO' },
      { id: 'github', name: 'GitHub' },
      { id: 'mirror', name: 'mirror' },
    ]);
  });

  it('sends the user to the provider with PKCE S256, state and nonce, and the allowed redirect URI', async () => {
    const started = await start(t);
    const url = new URL(started.authorizationUrl);
    expect(url.origin).toBe(idp.issuer);
    expect(url.searchParams.get('client_id')).toBe(CLIENT.id);
    expect(url.searchParams.get('redirect_uri')).toBe(REDIRECT_URI);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get('state')).toBe(started.state);
    expect(url.searchParams.get('nonce')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get('scope')).toBe('openid email profile');
  });

  it('creates an account for a new identity: verified email from the provider, no password, one identity, a session authenticated as federated (amr ["fed"])', async () => {
    const user = oidcUser();
    const payload = await signIn(user);
    expect(payload).toMatchObject({ __typename: 'AuthPayload', user: { email: user.email, emailVerified: true } });
    expect(inspect(payload.accessToken).claims.amr).toEqual(['fed']);
    const row = await userRow(t, payload.user.id);
    expect(row.passwordHash).toBeNull();
    expect(row.name).toBe('Olivia Idp');
    const me = await t.gql(MY_IDENTITIES, {}, { token: payload.accessToken });
    expect(me.data?.me.identities).toEqual([{ id: expect.any(String), provider: 'corp', subject: user.sub, email: user.email }]);
  });

  it("refuses a provider's user id that cannot be stored as sent (a NUL, or longer than 255 characters), and creates nothing", async () => {
    const before = await countUsers(t);
    for (const sub of ['sub\u0000hidden', `sub-${'x'.repeat(300)}`]) {
      expect(await signIn(oidcUser({ sub }))).toEqual(FAILED);
    }
    expect(await countUsers(t)).toBe(before);
  });

  it("leaves out a provider's display name that cannot be stored as sent, and still creates the account", async () => {
    const payload = await signIn(oidcUser({ name: 'Olivia\u0000Idp' }));
    expect(payload).toMatchObject({ __typename: 'AuthPayload' });
    expect((await userRow(t, payload.user.id)).name).toBeNull();
  });

  it('creates an unverified account when the provider does not assert the email is verified', async () => {
    const payload = await signIn(oidcUser({ email_verified: false }));
    expect(payload).toMatchObject({ __typename: 'AuthPayload', user: { emailVerified: false } });
  });

  it('signs a linked identity in again as the same user, in a new session (amr ["fed"])', async () => {
    const user = oidcUser();
    const first = await signIn(user);
    const again = await signIn(user);
    expect(again.__typename).toBe('AuthPayload');
    expect(inspect(again.accessToken).claims.amr).toEqual(['fed']);
    expect(again.user.id).toBe(first.user.id);
    expect(again.accessToken).not.toBe(first.accessToken);
    const events = await database.db.select().from(authEvents).where(and(eq(authEvents.userId, first.user.id), eq(authEvents.type, 'login_success')));
    expect(events.map((e) => e.detail)).toEqual([expect.objectContaining({ method: 'social', provider: 'corp' })]);
  });

  it('never links an identity to an existing account by its email: AccountExistsError, verified or not, and nothing is created', async () => {
    const existing = await registerUser(t);
    for (const verified of [true, false]) {
      const user = oidcUser({ email: existing.email, email_verified: verified });
      const payload = await signIn(user);
      expect(payload, `email_verified: ${verified}`).toEqual({ __typename: 'AccountExistsError', code: 'ACCOUNT_EXISTS' });
      expect(await identityRows('corp', user.sub)).toEqual([]);
    }
    expect(await countUsers(t, existing.email)).toBe(1);
    expect(await database.db.select().from(identities).where(eq(identities.userId, existing.userId))).toEqual([]);
  });

  it('refuses password login on an account made through a provider, like a wrong password', async () => {
    const user = oidcUser();
    await signIn(user);
    const res = await t.gql(LOGIN, { input: { email: user.email, password: GOOD_PASSWORD } });
    expect(res.data?.login.__typename).toBe('InvalidCredentialsError');
  });

  it('refuses a disabled account as login does', async () => {
    const user = oidcUser();
    const first = await signIn(user);
    await database.db.update(users).set({ active: false }).where(eq(users.id, first.user.id));
    expect(await signIn(user)).toEqual({ __typename: 'AccountDisabledError', code: 'ACCOUNT_DISABLED' });
  });
});

describe('refresh cookie', () => {
  it('is set by completeSocialSignIn in cookie mode (REFRESH_TOKEN_TRANSPORT=cookie), with no refresh token in the body', async () => {
    const cookieApp = await createTestApp({ ...socialEnv(idp.issuer, github), REFRESH_TOKEN_TRANSPORT: 'cookie' }, database);
    try {
      const started = await start(cookieApp);
      const back = await atProvider(started.authorizationUrl, oidcUser());
      const response = await cookieApp.app.fetch(
        'http://authgraph.test/graphql',
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            query: 'mutation C($code: String!, $state: String!) { completeSocialSignIn(provider: "corp", code: $code, state: $state) { __typename ... on AuthPayload { refreshToken } } }',
            variables: { code: back.get('code'), state: back.get('state') },
          }),
        },
        { req: { socket: { remoteAddress: '127.0.0.1' } } },
      );
      const body = await response.json();
      expect(body.data.completeSocialSignIn).toEqual({ __typename: 'AuthPayload', refreshToken: null });
      expect(response.headers.getSetCookie().join('\n')).toMatch(/^authgraph_refresh=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+;.*HttpOnly/im);
    } finally {
      await cookieApp.close();
    }
  });
});

describe('linking and unlinking', () => {
  it('links an identity while signed in; signing in with it then opens that account', async () => {
    const account = await registerUser(t);
    const started = await start(t, 'corp', REDIRECT_URI, account.accessToken);
    const user = oidcUser({ email: uniqueEmail('other-address') });
    const back = await atProvider(started.authorizationUrl, user);
    const linked = await t.gql(
      COMPLETE_LINK,
      { provider: 'corp', code: back.get('code'), state: back.get('state'), iss: back.get('iss') },
      { token: account.accessToken },
    );
    expect(linked.data?.completeIdentityLink).toMatchObject({ __typename: 'Identity', provider: 'corp', subject: user.sub, email: user.email });
    expect((await signIn(user)).user.id).toBe(account.userId);
    const events = await database.db.select().from(authEvents).where(and(eq(authEvents.userId, account.userId), eq(authEvents.type, 'identity_linked')));
    expect(events).toHaveLength(1);
  });

  it('refuses to link an identity that another account has (AccountExistsError), and keeps it where it was', async () => {
    const user = oidcUser();
    const owner = await signIn(user);
    const account = await registerUser(t);
    const started = await start(t, 'corp', REDIRECT_URI, account.accessToken);
    const back = await atProvider(started.authorizationUrl, user);
    const res = await t.gql(COMPLETE_LINK, { provider: 'corp', code: back.get('code'), state: back.get('state') }, { token: account.accessToken });
    expect(res.data?.completeIdentityLink).toEqual({ __typename: 'AccountExistsError', code: 'ACCOUNT_EXISTS' });
    expect((await identityRows('corp', user.sub)).map((r) => r.userId)).toEqual([owner.user.id]);
    expect((await linkFailures(account.userId)).map((e) => e.detail)).toEqual([{ reason: 'account_exists', provider: 'corp' }]);
  });

  it("refuses a link state in a sign-in, and another user's link state in a link", async () => {
    const account = await registerUser(t);
    const other = await registerUser(t);
    const forLink = await start(t, 'corp', REDIRECT_URI, account.accessToken);
    const back = await atProvider(forLink.authorizationUrl, oidcUser());
    expect(await complete(t, { provider: 'corp', code: back.get('code'), state: back.get('state') })).toEqual({
      __typename: 'SocialSignInError',
      code: 'SOCIAL_SIGN_IN_FAILED',
    });
    const again = await start(t, 'corp', REDIRECT_URI, account.accessToken);
    const back2 = await atProvider(again.authorizationUrl, oidcUser());
    const res = await t.gql(COMPLETE_LINK, { provider: 'corp', code: back2.get('code'), state: back2.get('state') }, { token: other.accessToken });
    expect(res.data?.completeIdentityLink).toEqual({ __typename: 'SocialSignInError', code: 'SOCIAL_SIGN_IN_FAILED' });
    expect(await database.db.select().from(identities).where(eq(identities.userId, other.userId))).toEqual([]);
    // A failed link is audited like a failed sign-in: whose session tried it, with which provider, and why.
    expect((await linkFailures(other.userId)).map((e) => e.detail)).toEqual([{ reason: 'social_sign_in_failed', provider: 'corp' }]);
    expect(await linkFailures(account.userId)).toEqual([]);
  });

  it('refuses to unlink the last way to sign in, and unlinks once another identity is linked', async () => {
    const payload = await signIn(oidcUser());
    const token = payload.accessToken as string;
    const [corp] = (await t.gql(MY_IDENTITIES, {}, { token })).data!.me.identities;
    const refused = await t.gql(UNLINK, { id: corp.id }, { token });
    expect(refused.errors?.[0]?.extensions?.code).toBe('LAST_SIGN_IN_METHOD');
    expect((await t.gql(MY_IDENTITIES, {}, { token })).data!.me.identities).toHaveLength(1);

    const started = await start(t, 'github', REDIRECT_URI, token);
    const back = await atProvider(started.authorizationUrl, githubUser());
    const linked = await t.gql(COMPLETE_LINK, { provider: 'github', code: back.get('code'), state: back.get('state') }, { token });
    expect(linked.data?.completeIdentityLink.__typename).toBe('Identity');
    expect((await t.gql(UNLINK, { id: corp.id }, { token })).data?.unlinkIdentity).toBe(true);
    expect((await t.gql(MY_IDENTITIES, {}, { token })).data!.me.identities.map((i: { provider: string }) => i.provider)).toEqual(['github']);
    // Someone else's identity, or one already gone: false, nothing removed.
    expect((await t.gql(UNLINK, { id: corp.id }, { token })).data?.unlinkIdentity).toBe(false);
  });

  it('refuses to start a link from a session that was authenticated longer ago than REAUTH_MAX_AGE (300 s), and starts it after a new sign-in', async () => {
    const account = await registerUser(t);
    t.clock.advance(300);
    expect((await start(t, 'corp', REDIRECT_URI, account.accessToken)).state).toBeTruthy();
    t.clock.advance(1);
    const refused = await t.gql(START_LINK, { provider: 'corp', redirectUri: REDIRECT_URI }, { token: account.accessToken });
    expect(refused.errors?.[0]?.extensions?.code, JSON.stringify(refused)).toBe('REAUTHENTICATION_REQUIRED');
    expect(refused.data).toBeNull();
    const again = await loginUser(t, account.email);
    expect((await start(t, 'corp', REDIRECT_URI, again.accessToken)).state).toBeTruthy();
  });

  it('lets an account with a password unlink its only identity', async () => {
    const account = await registerUser(t);
    const started = await start(t, 'corp', REDIRECT_URI, account.accessToken);
    const back = await atProvider(started.authorizationUrl, oidcUser());
    const linked = await t.gql(COMPLETE_LINK, { provider: 'corp', code: back.get('code'), state: back.get('state') }, { token: account.accessToken });
    const id = linked.data!.completeIdentityLink.id;
    expect((await t.gql(UNLINK, { id }, { token: account.accessToken })).data?.unlinkIdentity).toBe(true);
  });

  it("signs out the user's other sessions when an identity is unlinked (one opened through it too), not the session that unlinked it", async () => {
    const account = await registerUser(t);
    const one = await loginUser(t, account.email);
    const two = await loginUser(t, account.email);
    const user = oidcUser();
    const started = await start(t, 'corp', REDIRECT_URI, one.accessToken);
    const back = await atProvider(started.authorizationUrl, user);
    const linked = await t.gql(COMPLETE_LINK, { provider: 'corp', code: back.get('code'), state: back.get('state') }, { token: one.accessToken });
    const id = linked.data!.completeIdentityLink.id;
    const throughIdentity = await signIn(user);
    expect(throughIdentity.__typename).toBe('AuthPayload');

    expect((await t.gql(UNLINK, { id }, { token: one.accessToken })).data?.unlinkIdentity).toBe(true);
    expect(await meWorks(t, two.accessToken)).toBe(false);
    expect(await refreshWorks(t, two.refreshToken)).toBe(false);
    expect(await meWorks(t, throughIdentity.accessToken)).toBe(false);
    expect(await meWorks(t, account.accessToken)).toBe(false);
    expect(await meWorks(t, one.accessToken)).toBe(true);
    expect(await refreshWorks(t, one.refreshToken)).toBe(true);
    const events = await database.db.select().from(authEvents).where(and(eq(authEvents.userId, account.userId), eq(authEvents.type, 'identity_unlinked')));
    expect(events.map((e) => e.detail)).toEqual([{ provider: 'corp', identityId: id, revokedSessions: 3 }]);
  });

  it('shows identities to the user themself, not to another user', async () => {
    const a = await registerUser(t);
    const b = await registerUser(t);
    const res = await t.gql(`query($id: ID!) { user(id: $id) { id identities { id } } }`, { id: a.userId }, { token: b.accessToken });
    expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});

describe('social sign-in through GitHub', () => {
  it('creates an account from the verified primary email, the numeric id as subject', async () => {
    const user = githubUser();
    const payload = await signIn(user);
    expect(payload).toMatchObject({ __typename: 'AuthPayload', user: { email: user.emails[1]!.email, emailVerified: true } });
    expect((await identityRows('github', String(user.id))).map((r) => r.userId)).toEqual([payload.user.id]);
    expect((await signIn(user)).user.id).toBe(payload.user.id);
  });

  it('takes an unverified primary email as unverified, and a verified secondary one as nothing', async () => {
    const user = githubUser();
    user.emails = [
      { email: uniqueEmail('gh-verified-secondary'), primary: false, verified: true },
      { email: uniqueEmail('gh-unverified-primary'), primary: true, verified: false },
    ];
    const payload = await signIn(user);
    expect(payload).toMatchObject({ __typename: 'AuthPayload', user: { email: user.emails[1]!.email, emailVerified: false } });
  });

  it('stores no provider access token', async () => {
    await signIn(githubUser());
    const dump = JSON.stringify([
      await database.db.select().from(identities),
      await database.db.select().from(authEvents),
      await database.db.select().from(users),
    ]);
    expect(github.issuedTokens.length).toBeGreaterThan(0);
    for (const token of github.issuedTokens) expect(dump).not.toContain(token);
  });
});

describe('attacks', () => {
  const failed = FAILED;

  /** A started flow the provider answered: the callback's parameters, and the user, who has no account. */
  async function answered(provider = 'corp') {
    const user = provider === 'github' ? githubUser() : oidcUser();
    const started = await start(t, provider);
    const back = await atProvider(started.authorizationUrl, user);
    const email = 'login' in user ? user.emails[1]!.email : user.email!;
    return { back, started, email };
  }

  it('refuses a missing or wrong state, and creates nothing', async () => {
    const { back, email } = await answered();
    for (const state of ['', randomBytes(32).toString('base64url')]) {
      expect(await complete(t, { provider: 'corp', code: back.get('code'), state }), state).toEqual(failed);
    }
    expect(await countUsers(t, email)).toBe(0);
  });

  it('refuses a replayed state', async () => {
    const { back } = await answered();
    const variables = { provider: 'corp', code: back.get('code'), state: back.get('state'), iss: back.get('iss') };
    expect((await complete(t, variables)).__typename).toBe('AuthPayload');
    expect(await complete(t, variables)).toEqual(failed);
  });

  it('refuses an expired state (SOCIAL_STATE_TTL on the server clock), and creates nothing', async () => {
    const { back, email } = await answered();
    t.clock.advance(STATE_TTL);
    expect(await complete(t, { provider: 'corp', code: back.get('code'), state: back.get('state'), iss: back.get('iss') })).toEqual(failed);
    expect(await countUsers(t, email)).toBe(0);
  });

  it('accepts a state just before it expires', async () => {
    const { back } = await answered();
    t.clock.advance(STATE_TTL - 1);
    expect((await complete(t, { provider: 'corp', code: back.get('code'), state: back.get('state'), iss: back.get('iss') })).__typename).toBe('AuthPayload');
  });

  it('refuses a state started for another provider, and creates nothing', async () => {
    const { back, email } = await answered('github');
    expect(await complete(t, { provider: 'corp', code: back.get('code'), state: back.get('state') })).toEqual(failed);
    expect(await countUsers(t, email)).toBe(0);
    // The same IdP and client under another provider id: only the state tells them apart.
    const mirrored = await answered('corp');
    const variables = { provider: 'mirror', code: mirrored.back.get('code'), state: mirrored.back.get('state'), iss: mirrored.back.get('iss') };
    expect(await complete(t, variables)).toEqual(failed);
    expect(await countUsers(t, mirrored.email)).toBe(0);
  });

  it('refuses a code the provider issued to another client', async () => {
    const started = await start(t);
    const url = new URL(started.authorizationUrl);
    url.searchParams.set('client_id', INTRUDER.id); // same state, PKCE challenge, nonce and redirect URI
    const user = oidcUser();
    const back = await atProvider(url.href, user);
    expect(back.get('code')).toBeTruthy();
    expect(await complete(t, { provider: 'corp', code: back.get('code'), state: back.get('state'), iss: back.get('iss') })).toEqual(failed);
    expect(await countUsers(t, user.email)).toBe(0);
  });

  it('refuses an ID token whose nonce is not the one the sign-in started with', async () => {
    const started = await start(t);
    const url = new URL(started.authorizationUrl);
    url.searchParams.set('nonce', randomBytes(32).toString('base64url'));
    const user = oidcUser();
    const back = await atProvider(url.href, user);
    expect(await complete(t, { provider: 'corp', code: back.get('code'), state: back.get('state'), iss: back.get('iss') })).toEqual(failed);
    expect(await countUsers(t, user.email)).toBe(0);
  });

  it("refuses an iss that is not the provider's issuer", async () => {
    const { back, email } = await answered();
    expect(back.get('iss')).toBe(idp.issuer);
    expect(await complete(t, { provider: 'corp', code: back.get('code'), state: back.get('state'), iss: 'https://evil.example' })).toEqual(failed);
    expect(await countUsers(t, email)).toBe(0);
  });

  it('refuses a redirect URI outside SOCIAL_REDIRECT_URIS, also one differing by a trailing slash or a query', async () => {
    for (const redirectUri of [`${REDIRECT_URI}/`, `${REDIRECT_URI}?next=/admin`, 'https://evil.example/auth/callback', 'https://app.example/auth/callbac']) {
      const res = await t.gql(START, { provider: 'corp', redirectUri });
      expect(res.data?.startSocialSignIn, redirectUri).toEqual({ __typename: 'InputError', field: 'redirectUri', code: 'INVALID_INPUT' });
    }
  });

  it('refuses an unknown provider as an input error', async () => {
    const res = await t.gql(START, { provider: 'nope', redirectUri: REDIRECT_URI });
    expect(res.data?.startSocialSignIn).toEqual({ __typename: 'InputError', field: 'provider', code: 'INVALID_INPUT' });
  });

  it('makes one account of a new identity completed twice at once (two states), signing both in (races on PostgreSQL)', async () => {
    for (let round = 0; round < 4; round++) {
      const user = oidcUser();
      const backs = [];
      for (let i = 0; i < 2; i++) backs.push(await atProvider((await start(t)).authorizationUrl, user));
      const answers = await Promise.all(backs.map((back) => complete(t, callbackVariables('corp', back))));
      expect(answers.map((a) => a.__typename), `round ${round}`).toEqual(['AuthPayload', 'AuthPayload']);
      expect(answers[1].user.id).toBe(answers[0].user.id);
      expect(await countUsers(t, user.email)).toBe(1);
      expect(await identityRows('corp', user.sub)).toHaveLength(1);
    }
  });

  it('answers one of two concurrent completions with one state, and refuses the other', async () => {
    const { back } = await answered();
    const variables = { provider: 'corp', code: back.get('code'), state: back.get('state'), iss: back.get('iss') };
    const answers = await Promise.all([complete(t, variables), complete(t, variables)]);
    expect(answers.map((a) => a.__typename).sort()).toEqual(['AuthPayload', 'SocialSignInError']);
  });
});
