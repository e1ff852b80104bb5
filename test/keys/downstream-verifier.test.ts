/**
 * A downstream service verifying authgraph's access tokens the way the README tells users to:
 * jose's remote JWKS against the server over HTTP, pinned issuer and audience. Rotations are
 * driven by the apps' TestClocks; jose is given the same simulated instant (`currentDate`) for
 * its exp checks, while its own cache timing (cacheMaxAge, cooldownDuration) runs on wall-clock
 * time, which is why each scenario says when its verifier fetched the set.
 */
import type { RequestListener } from 'node:http';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWK } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { JWKS_PATH } from '../../src/plugins/use-jwks.js';
import { epochSeconds } from '../../src/time.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { OWN_DATABASE_TIMEOUT } from '../support/database.js';
import { AUDIENCE, claimsOf, expectUnauthenticated, ISSUER } from '../support/forge.js';
import { listen, type Listening } from '../support/listen.js';
import { loginUser, ME_ID, REFRESH_BRIEF, registerUser } from '../support/operations.js';

const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  // Servers before the apps they serve.
  for (const resource of opened.splice(0).reverse()) await resource.close();
});

async function open(env: Record<string, string>, database?: TestApp['database']): Promise<TestApp> {
  const t = await createTestApp({ JWT_SECRET: '', ...env }, database);
  opened.push(t);
  return t;
}

/** Serves the app over HTTP, counting the requests for the key set. */
async function serve(t: TestApp): Promise<Listening & { jwksUrl: URL; jwksFetches(): number }> {
  let fetches = 0;
  const app = t.app as unknown as RequestListener;
  const server = await listen((req, res) => {
    if (req.url?.startsWith(JWKS_PATH)) fetches++;
    return app(req, res);
  });
  opened.push(server);
  return { ...server, jwksUrl: new URL(`${server.url}${JWKS_PATH}`), jwksFetches: () => fetches };
}

type RemoteJwks = ReturnType<typeof createRemoteJWKSet>;

/** What a downstream service does with a bearer token, at the app's simulated instant. */
const verifyDownstream = (t: TestApp, token: string, jwks: RemoteJwks) =>
  jwtVerify(token, jwks, { issuer: ISSUER, audience: AUDIENCE, currentDate: t.clock.now() });

const kidOf = (token: string) => decodeProtectedHeader(token).kid;

async function expectServerAccepts(t: TestApp, token: string, userId: string) {
  expect(await t.gql(ME_ID, {}, { token })).toEqual({ status: 200, data: { me: { id: userId } } });
}

async function statesByKid(t: TestApp): Promise<Record<string, string>> {
  const list = await t.services.signingKeys.manager!.list();
  return Object.fromEntries(list.map((key) => [key.kid, key.state]));
}

describe('a downstream verifier using jose createRemoteJWKSet over HTTP', () => {
  it(
    'verifies tokens before, during and after a rotation, including tokens signed by the old key after the new one became current',
    async () => {
      const MAX_AGE = 10;
      const t = await open({ JWKS_MAX_AGE: String(MAX_AGE), ACCESS_TOKEN_TTL: '120' });
      // A second instance on the same database whose clock is one second behind t's.
      const lagging = await open({ JWKS_MAX_AGE: String(MAX_AGE), ACCESS_TOKEN_TTL: '120' }, t.database);
      lagging.clock.advance((t.clock.now().getTime() - lagging.clock.now().getTime()) / 1000 - 1);
      const server = await serve(t);
      const manager = t.services.signingKeys.manager!;
      const oldKid = (await manager.list())[0]!.kid;

      // Before: a verifier that fetched the set once.
      const early = createRemoteJWKSet(server.jwksUrl);
      const user = await registerUser(t);
      const a = user.accessToken;
      expect(kidOf(a)).toBe(oldKid);
      const verifiedA = await verifyDownstream(t, a, early);
      expect(verifiedA.payload.sub).toBe(user.userId);
      expect(verifiedA.protectedHeader).toMatchObject({ alg: 'ES256', kid: oldKid });
      expect(server.jwksFetches()).toBe(1);

      // During the pre-publication wait: the new key is published but does not sign yet.
      const newKid = await manager.rotate();
      await lagging.services.signingKeys.manager!.reload(); // what its notification or periodic reload does
      t.clock.advance(MAX_AGE);
      lagging.clock.advance(MAX_AGE);
      const b = (await loginUser(t, user.email)).accessToken;
      expect(kidOf(b)).toBe(oldKid);
      await verifyDownstream(t, b, early);
      // A verifier whose cache was (re)filled in this window holds the new key too.
      const late = createRemoteJWKSet(server.jwksUrl);
      await verifyDownstream(t, b, late);
      expect(server.jwksFetches()).toBe(2);
      expect(late.jwks()!.keys.map((key: JWK) => key.kid).sort()).toEqual([oldKid, newKid].sort());

      // The new key's activation instant: t signs with it; the lagging instance still signs with the old one.
      t.clock.advance(MAX_AGE);
      lagging.clock.advance(MAX_AGE);
      const c = (await loginUser(t, user.email)).accessToken;
      expect(kidOf(c)).toBe(newKid);
      const d = (await loginUser(lagging, user.email)).accessToken;
      expect(kidOf(d)).toBe(oldKid);
      await verifyDownstream(t, c, late);
      await verifyDownstream(t, d, late);
      // From its cache: the new key was published before it signed anything.
      expect(server.jwksFetches()).toBe(2);

      // After the promotion is recorded: the old key is retired, still published and accepted.
      await manager.step();
      expect(await statesByKid(t)).toEqual({ [oldKid]: 'retired', [newKid]: 'current' });
      t.clock.advance(5);
      const e = (await loginUser(t, user.email)).accessToken;
      expect(kidOf(e)).toBe(newKid);
      const fresh = createRemoteJWKSet(server.jwksUrl);
      for (const token of [a, b, c, d, e]) {
        await verifyDownstream(t, token, late);
        await verifyDownstream(t, token, fresh);
        await expectServerAccepts(t, token, user.userId);
      }
      // The verifier from before the rotation still verifies what the old key signed.
      for (const token of [a, b, d]) await verifyDownstream(t, token, early);
    },
    OWN_DATABASE_TIMEOUT * 2,
  );

  it(
    'never meets a kid missing from a key set it cached within JWKS_MAX_AGE, and no valid token is refused across rotations',
    async () => {
      const MAX_AGE = 10;
      const TTL = 20;
      const DURATION = 100; // rotations at 30, 60 and 90 s
      const t = await open({ JWKS_MAX_AGE: String(MAX_AGE), KEY_ROTATION_INTERVAL: '30', ACCESS_TOKEN_TTL: String(TTL) });
      const manager = t.services.signingKeys.manager!;
      const user = await registerUser(t);
      const { sid, roles } = claimsOf(user.accessToken) as { sid: string; roles: string[] };

      const caches: { at: number; kids: Set<string> }[] = [];
      const tokens: { at: number; kid: string; token: string; exp: number }[] = [];
      const refused: string[] = [];
      for (let second = 0; second <= DURATION; second++) {
        if (second > 0) t.clock.advance(1);
        await manager.step();
        const res = await t.app.fetch(`http://authgraph.test${JWKS_PATH}`);
        expect(res.headers.get('cache-control')).toBe(`public, max-age=${MAX_AGE}`);
        const { keys } = (await res.json()) as { keys: JWK[] };
        caches.push({ at: second, kids: new Set(keys.map((key) => key.kid!)) });

        const issued = await t.services.accessTokens.sign({ userId: user.userId, sessionId: sid, roles, amr: ['pwd'], authTime: t.clock.now() }, t.clock.now());
        tokens.push({ at: second, kid: kidOf(issued.token)!, token: issued.token, exp: epochSeconds(issued.expiresAt) });

        const live = tokens.filter((token) => token.exp > epochSeconds(t.clock.now()));
        const answers = await Promise.all(live.map((token) => t.gql(ME_ID, {}, { token: token.token })));
        answers.forEach((answer, i) => {
          if (answer.data?.me?.id !== user.userId) refused.push(`token of ${live[i]!.at} s refused at ${second} s: ${JSON.stringify(answer)}`);
        });
      }

      // The schedule really rotated, more than once.
      expect(new Set(tokens.map((token) => token.kid)).size).toBeGreaterThanOrEqual(4);
      expect(refused).toEqual([]);
      const missing: string[] = [];
      for (const cache of caches) {
        for (const token of tokens.filter((tok) => tok.at >= cache.at && tok.at <= cache.at + MAX_AGE)) {
          if (!cache.kids.has(token.kid)) missing.push(`token of ${token.at} s (kid ${token.kid}) not in the set cached at ${cache.at} s`);
        }
      }
      expect(missing).toEqual([]);
    },
    300_000,
  );

  it(
    'refuses tokens of a retired (revoked) key once it refetches the set, while the session refreshes onto the replacement key',
    async () => {
      const t = await open({});
      const server = await serve(t);
      const manager = t.services.signingKeys.manager!;
      // jose refetches the set on an unknown kid only after its cooldown (30 s of wall-clock time
      // by default); cooldownDuration: 0 lets it refetch at the first unknown kid, without sleeping.
      const jwks = createRemoteJWKSet(server.jwksUrl, { cooldownDuration: 0 });
      const user = await registerUser(t);
      const revokedKid = kidOf(user.accessToken)!;
      await verifyDownstream(t, user.accessToken, jwks);

      expect(await manager.retire(revokedKid)).toBe(true);
      expectUnauthenticated(await t.gql(ME_ID, {}, { token: user.accessToken }), 'me');

      const refreshed = await t.gql(REFRESH_BRIEF, { token: user.refreshToken });
      expect(refreshed.data?.refresh).toMatchObject({ __typename: 'AuthPayload', user: { id: user.userId } });
      const replacement = refreshed.data!.refresh.accessToken as string;
      expect(kidOf(replacement)).not.toBe(revokedKid);

      // Its cached set still holds the revoked key; the replacement's unknown kid makes it refetch.
      const fetchesBefore = server.jwksFetches();
      await verifyDownstream(t, replacement, jwks);
      expect(server.jwksFetches()).toBe(fetchesBefore + 1);
      await expect(verifyDownstream(t, user.accessToken, jwks)).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
    },
    OWN_DATABASE_TIMEOUT,
  );
});
