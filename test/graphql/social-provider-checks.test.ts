/**
 * What openid-client checks for us, exercised through our flow over GraphQL (issue 15): an ID
 * token from another issuer, or issued to another client, swapped into the provider's token
 * answer by a proxy in front of a real OpenID Provider, is refused and creates nothing. And an
 * issuer that cannot be reached neither stops the server nor needs a restart once it is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../../src/db/client.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { openTestDatabase } from '../support/database.js';
import { freePort } from '../support/free-port.js';
import {
  idTokenFrom,
  startOpenIdProvider,
  startTamperingProxy,
  type TamperingProxy,
  type TestOpenIdProvider,
} from '../support/identity-providers.js';
import { countUsers } from '../support/rows.js';
import { atProvider, callbackVariables, CLIENT, complete, FAILED, INTRUDER, oidcUser, signIn, socialEnv, start, START } from '../support/social-flow.js';

let database: DatabaseHandle;
let proxy: TamperingProxy;
/** The provider behind the proxy: its issuer is the proxy's URL. */
let idp: TestOpenIdProvider;
/** Another provider, with its own issuer, where CLIENT is registered too. */
let elsewhere: TestOpenIdProvider;
let t: TestApp;

beforeAll(async () => {
  database = await openTestDatabase();
  const tampering = await startTamperingProxy();
  proxy = tampering;
  idp = await startOpenIdProvider([CLIENT, INTRUDER], { issuer: proxy.url });
  tampering.forwardTo(idp.url);
  elsewhere = await startOpenIdProvider([CLIENT]);
  t = await createTestApp(socialEnv(proxy.url), database);
});

afterAll(async () => {
  await t?.close();
  await proxy?.close();
  await idp?.close();
  await elsewhere?.close();
  await database?.close();
});

/**
 * Starts our sign-in, gets `foreign` an ID token for the same user and the same nonce by
 * `obtain`, has the proxy put it in the token answer, and completes: the answer.
 */
async function completeWithSwappedIdToken(obtain: (user: ReturnType<typeof oidcUser>, nonce: string) => Promise<string>) {
  const user = oidcUser();
  const started = await start(t);
  const nonce = new URL(started.authorizationUrl).searchParams.get('nonce')!;
  const foreign = await obtain(user, nonce);
  const back = await atProvider({ idp }, started.authorizationUrl, user);
  const before = proxy.swapped;
  proxy.swapNextIdToken(foreign);
  const answer = await complete(t, callbackVariables('corp', back));
  expect(proxy.swapped, 'the proxy swapped the ID token of our token answer').toBe(before + 1);
  return { answer, user };
}

describe('ID token checks (a proxy swaps the ID token in the token answer)', () => {
  it('signs in through the proxy when nothing is swapped', async () => {
    const answer = await signIn(t, { idp }, oidcUser());
    expect(answer.__typename).toBe('AuthPayload');
  });

  it('signs in with a genuine ID token of this flow swapped in again (the swap alone refuses nothing)', async () => {
    // The same issuer, client, user and nonce: only the ID token's instance differs.
    const { answer } = await completeWithSwappedIdToken((user, nonce) => idTokenFrom(idp, CLIENT, user, nonce));
    expect(answer.__typename).toBe('AuthPayload');
  });

  it('refuses an ID token issued to another client (wrong audience), and creates nothing', async () => {
    const { answer, user } = await completeWithSwappedIdToken((u, nonce) => idTokenFrom(idp, INTRUDER, u, nonce));
    expect(answer).toEqual(FAILED);
    expect(await countUsers(t, user.email)).toBe(0);
  });

  it('refuses an ID token from another issuer (wrong iss), and creates nothing', async () => {
    const { answer, user } = await completeWithSwappedIdToken((u, nonce) => idTokenFrom(elsewhere, CLIENT, u, nonce));
    expect(answer).toEqual(FAILED);
    expect(await countUsers(t, user.email)).toBe(0);
  });
});

describe('an unreachable issuer', () => {
  it('lets the server start, answers SocialSignInError until discovery succeeds, then works without a restart', async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const app = await createTestApp({ ...socialEnv(issuer), SOCIAL_PROVIDERS: 'corp' }, database);
    let late: TestOpenIdProvider | undefined;
    try {
      expect((await app.gql('{ socialProviders { id } }')).data?.socialProviders).toEqual([{ id: 'corp' }]);
      for (let attempt = 0; attempt < 2; attempt++) {
        const res = await app.gql(START, { provider: 'corp', redirectUri: 'https://app.example/auth/callback' });
        expect(res.data?.startSocialSignIn, `attempt ${attempt}`).toEqual(FAILED);
      }
      late = await startOpenIdProvider([CLIENT], { port });
      const answer = await signIn(app, { idp: late }, oidcUser());
      expect(answer.__typename).toBe('AuthPayload');
    } finally {
      await app.close();
      await late?.close();
    }
  });
});
