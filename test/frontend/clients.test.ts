/**
 * urql and Apollo Client, set up exactly as examples/clients (and the README) show, against the
 * app on a real HTTP port: access tokens expire by moving the app's clock, never by waiting.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AuthSessionOptions, Tokens } from '../../examples/clients/auth-session.js';
import { sessionIdOf, REVOKE_SESSION } from '../support/account.js';
import { CROSS_SITE_APP_ORIGIN, SAME_SITE_APP_ORIGIN } from '../support/browser-fetch.js';
import { CLIENT_SETUPS, SHORT_ACCESS_TTL, startFrontendServer, type ClientSetup, type FrontendServer } from '../support/frontend.js';
import { GOOD_PASSWORD, loginUser, registerUser, type Session } from '../support/operations.js';

/**
 * The app's page (app.example.com) is another origin than the API (api.example.com), of the same
 * site; a page of another site (app.example.org) is listed too, to show what SameSite=Strict does to it.
 */
const CORS = { CORS_ORIGINS: `${SAME_SITE_APP_ORIGIN},${CROSS_SITE_APP_ORIGIN}` };
const UNLISTED_ORIGIN = 'http://elsewhere.example.com:5173';

/**
 * How the refresh token travels (REFRESH_TOKEN_TRANSPORT), and the client option that goes with
 * it. The clients run in one browser (browser-fetch.ts), on a page the server lists in
 * CORS_ORIGINS; in cookie and both modes its cookie jar is shared by every client.
 */
const TRANSPORTS: { name: string; env: Record<string, string>; transport: AuthSessionOptions['transport'] }[] = [
  { name: 'body', env: CORS, transport: 'body' },
  { name: 'cookie', env: { ...CORS, REFRESH_TOKEN_TRANSPORT: 'cookie' }, transport: 'cookie' },
  // A browser app on a server that also serves native apps: the cookie, and the token in the body.
  { name: 'both', env: { ...CORS, REFRESH_TOKEN_TRANSPORT: 'both' }, transport: 'cookie' },
];

describe.each(TRANSPORTS)('refresh token in the $name', (transport) => {
  let server: FrontendServer;
  beforeAll(async () => {
    server = await startFrontendServer(transport.env);
  });
  afterAll(() => server?.close());

  describe.each(CLIENT_SETUPS)('$name', (setup: ClientSetup) => {
    /** A client as the app makes it, with spies for onSignedOut and onTokens. */
    function makeClient(tokens: Tokens | null = null) {
      const onSignedOut = vi.fn();
      const onTokens = vi.fn<(tokens: Tokens) => void>();
      const options = { url: server.url, tokens, onSignedOut, onTokens, transport: transport.transport };
      return { client: setup.create(options), onSignedOut, onTokens };
    }

    /** A fresh user signed in through a new client; also the user's own session (for revoking). */
    async function signedInClient() {
      const user = await registerUser(server.t);
      const made = makeClient();
      await made.client.signIn(user.email, GOOD_PASSWORD);
      return { ...made, user };
    }

    const expire = () => server.t.clock.advance(SHORT_ACCESS_TTL + 1);

    /** Counts the refresh mutations clients send from now on. */
    function watchRefreshes() {
      const before = server.refreshAttempts();
      return () => server.refreshAttempts() - before;
    }

    it('queries with the access token, sending queries by its default method without a CSRF refusal', async () => {
      const { client, user, onSignedOut } = await signedInClient();
      const before = server.requests.length;
      expect(await client.me()).toEqual({ me: { __typename: 'User', id: user.userId, email: user.email } });
      // Leaving out the browser's preflight (CORS), which it then keeps for Access-Control-Max-Age.
      const sent = server.requests.slice(before).filter((r) => r.method !== 'OPTIONS');
      expect(sent).toHaveLength(1);
      expect(sent[0]!.method).toBe(setup.queryMethod);
      expect(onSignedOut).not.toHaveBeenCalled();
    });

    it('refreshes once when the access token has expired, and the caller sees no error', async () => {
      const { client, user, onSignedOut, onTokens } = await signedInClient();
      expect((await client.me()).me).toMatchObject({ id: user.userId });
      const token = client.session.accessToken();
      const sent = watchRefreshes();
      expire();
      expect(await client.me('name')).toEqual({ me: { __typename: 'User', id: user.userId, name: null } });
      expect(await server.refreshCount(user.userId)).toBe(1);
      expect(sent()).toBe(1);
      expect(client.session.accessToken()).not.toBe(token);
      // The new pair is handed to the app to keep (after the one of the sign-in).
      expect(onTokens).toHaveBeenCalledTimes(2);
      expect(onTokens.mock.lastCall![0].accessToken).toBe(client.session.accessToken());
      // The new token goes on working without another refresh.
      expect((await client.me('roles')).me).toMatchObject({ id: user.userId });
      expect(await server.refreshCount(user.userId)).toBe(1);
      expect(onSignedOut).not.toHaveBeenCalled();
    });

    it('refreshes once for five queries sent at once after expiry', async () => {
      const { client, user, onSignedOut } = await signedInClient();
      const sent = watchRefreshes();
      expire();
      const fields = ['email', 'name', 'roles', 'createdAt', 'emailVerified'];
      const outcomes = await Promise.all(fields.map((field) => client.me(field)));
      for (const outcome of outcomes) {
        expect(outcome.error).toBeUndefined();
        expect(outcome.me).toMatchObject({ id: user.userId });
      }
      expect(await server.refreshCount(user.userId)).toBe(1);
      expect(sent()).toBe(1);
      expect(onSignedOut).not.toHaveBeenCalled();
    });

    it('retries without another refresh a request that failed with a token already replaced', async () => {
      const { client, user, onSignedOut } = await signedInClient();
      const sent = watchRefreshes();
      expire();
      const held = server.holdNextRequest();
      const late = client.me('email');
      await held.arrived;
      // Sent after it but answered first: this one refreshes.
      expect((await client.me('name')).me).toMatchObject({ id: user.userId });
      held.release();
      // The held one now meets its expired token, after the refresh.
      expect(await late).toEqual({ me: { __typename: 'User', id: user.userId, email: user.email } });
      expect(sent()).toBe(1);
      expect(await server.refreshCount(user.userId)).toBe(1);
      expect(onSignedOut).not.toHaveBeenCalled();
    });

    it('lets two clients holding the same refresh token refresh together, and both go on', async () => {
      // Two tabs restored from one copy of the tokens (in cookie mode: sharing the browser's cookie).
      const first = await signedInClient();
      const { user } = first;
      const second = makeClient(first.onTokens.mock.lastCall![0]);
      expire();
      const [a, b] = await Promise.all([first.client.me(), second.client.me()]);
      expect(a).toEqual({ me: { __typename: 'User', id: user.userId, email: user.email } });
      expect(b).toEqual(a);
      // One rotation, and one retry within the grace window answered with the same successor.
      expect(await server.refreshCount(user.userId)).toBe(2);
      for (const { client, onSignedOut } of [first, second]) {
        expect((await client.me('name')).me).toMatchObject({ id: user.userId });
        expect(onSignedOut).not.toHaveBeenCalled();
      }
    });

    it('reports signed out on a revoked session, without trying a refresh', async () => {
      const { client, user, onSignedOut } = await signedInClient();
      const other: Session = await loginUser(server.t, user.email);
      const revoked = await server.t.gql(REVOKE_SESSION, { id: sessionIdOf(client.session.accessToken()!) }, { token: other.accessToken });
      expect(revoked.data).toEqual({ revokeSession: true });
      const sent = watchRefreshes();
      const outcome = await client.me();
      expect(outcome.error?.reason).toBe('REVOKED');
      expect(onSignedOut).toHaveBeenCalledTimes(1);
      expect(client.session.accessToken()).toBeNull();
      expect(sent()).toBe(0);
    });

    it('reports signed out when the refresh token is refused after expiry (session revoked meanwhile)', async () => {
      const { client, user, onSignedOut } = await signedInClient();
      const other = await loginUser(server.t, user.email);
      await server.t.gql(REVOKE_SESSION, { id: sessionIdOf(client.session.accessToken()!) }, { token: other.accessToken });
      const sent = watchRefreshes();
      expire();
      const outcome = await client.me();
      // The retried query goes without a token: the caller is told it is signed out.
      expect(outcome.error?.reason).toBe('MISSING');
      expect(onSignedOut).toHaveBeenCalledTimes(1);
      expect(client.session.accessToken()).toBeNull();
      // One refresh was tried, refused, and not tried again.
      expect(sent()).toBe(1);
      expect(await server.refreshCount(user.userId)).toBe(0);
    });

    it('reports signed out on a malformed access token, without trying a refresh', async () => {
      const user = await registerUser(server.t);
      const { client, onSignedOut } = makeClient({ accessToken: 'not-a-token', refreshToken: user.refreshToken });
      const sent = watchRefreshes();
      expect((await client.me()).error?.reason).toBe('MALFORMED');
      expect(onSignedOut).toHaveBeenCalledTimes(1);
      expect(sent()).toBe(0);
    });

    it(`keeps the refresh token in the ${transport.name} through sign-in and refresh`, async () => {
      const { client, user, onTokens } = await signedInClient();
      const refreshCookie = async () => (await server.browser.jar.getCookies(server.url)).find((c) => c.key === 'authgraph_refresh')?.value ?? null;
      const cookies = [await refreshCookie()];
      expire();
      expect((await client.me()).me).toMatchObject({ id: user.userId });
      cookies.push(await refreshCookie());
      const kept = onTokens.mock.calls.map(([tokens]) => tokens.refreshToken);
      // Where it lives, a new token after the refresh; the other place (if any) holds none.
      const places = { body: [kept], cookie: [cookies], both: [kept, cookies] }[transport.name]!;
      for (const holder of places) {
        expect(holder).toEqual([expect.any(String), expect.any(String)]);
        expect(holder[1]).not.toBe(holder[0]);
      }
      if (transport.name === 'both') expect(kept).toEqual(cookies);
      else expect(transport.name === 'cookie' ? kept : cookies).toEqual([null, null]);
    });

    /** Runs `body` with the clients on a page of `origin` (the browser's page origin), then goes back. */
    async function onPageOf<T>(origin: string, body: () => Promise<T>): Promise<T> {
      server.browser.pageOrigin = origin;
      try {
        return await body();
      } finally {
        server.browser.pageOrigin = SAME_SITE_APP_ORIGIN;
      }
    }

    it('cannot sign in from a page whose origin CORS_ORIGINS does not list: the browser refuses the preflight and never sends the login', async () => {
      const user = await registerUser(server.t);
      const { client, onTokens } = makeClient();
      const before = server.requests.length;
      await onPageOf(UNLISTED_ORIGIN, async () => {
        await expect(client.signIn(user.email, GOOD_PASSWORD)).rejects.toThrow(/Failed to fetch/);
      });
      expect(server.requests.slice(before).map((r) => r.method)).toEqual(['OPTIONS']);
      expect(server.browser.refusals.at(-1)).toMatch(/^preflight: Access-Control-Allow-Origin is null/);
      expect(onTokens).not.toHaveBeenCalled();
      expect(client.session.accessToken()).toBeNull();
    });

    it.runIf(transport.name === 'cookie')(
      'on a page of another site (listed in CORS_ORIGINS), signs in but is signed out at the first refresh: SameSite=Strict never sends the cookie',
      async () => {
        await onPageOf(CROSS_SITE_APP_ORIGIN, async () => {
          const { client, user, onSignedOut } = await signedInClient();
          expect((await client.me()).me).toMatchObject({ id: user.userId });
          expire();
          expect((await client.me()).error?.reason).toBe('MISSING');
          expect(onSignedOut).toHaveBeenCalledTimes(1);
          expect(await server.refreshCount(user.userId)).toBe(0);
        });
      },
    );

    it.runIf(transport.transport === 'cookie')(
      'resumes after a page reload: a new client sharing the browser\'s cookies, holding no token, refreshes with the cookie and queries me',
      async () => {
        const { user } = await signedInClient();
        // The reload: a new client, no tokens kept; the browser's cookies are still there.
        const reloaded = makeClient();
        const sent = watchRefreshes();
        expect(await reloaded.client.session.resume()).toBe(true);
        expect(sent()).toBe(1);
        expect(reloaded.onTokens).toHaveBeenCalledTimes(1);
        expect(await reloaded.client.me()).toEqual({ me: { __typename: 'User', id: user.userId, email: user.email } });
        expect(reloaded.onSignedOut).not.toHaveBeenCalled();
        // Signed in now: resuming again asks nothing more.
        expect(await reloaded.client.session.resume()).toBe(true);
        expect(sent()).toBe(1);
      },
    );

    it.runIf(transport.transport === 'cookie')(
      'resumes as signed out, quietly, when the session behind the cookie was revoked, and when there is no cookie',
      async () => {
        const { client, user } = await signedInClient();
        const other = await loginUser(server.t, user.email);
        await server.t.gql(REVOKE_SESSION, { id: sessionIdOf(client.session.accessToken()!) }, { token: other.accessToken });
        const reloaded = makeClient();
        expect(await reloaded.client.session.resume()).toBe(false);
        expect(reloaded.client.session.accessToken()).toBeNull();
        expect(reloaded.onSignedOut).not.toHaveBeenCalled();
        expect(reloaded.onTokens).not.toHaveBeenCalled();
        expect((await reloaded.client.me()).error?.reason).toBe('MISSING');
        // The refused cookie was cleared: a browser with no cookie resumes signed out the same way.
        expect((await server.browser.jar.getCookies(server.url)).map((c) => c.key)).not.toContain('authgraph_refresh');
        const again = makeClient();
        expect(await again.client.session.resume()).toBe(false);
        expect(again.onSignedOut).not.toHaveBeenCalled();
      },
    );

    it('puts no token in any URL', async () => {
      const { client } = await signedInClient();
      const tokens = [client.session.accessToken()!];
      expire();
      await client.me();
      tokens.push(client.session.accessToken()!);
      for (const request of server.requests) {
        for (const token of tokens) expect(request.url).not.toContain(token);
        expect(request.url).not.toMatch(/refreshToken|accessToken/);
      }
    });
  });
});
