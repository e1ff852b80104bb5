/**
 * Real identity providers for social sign-in tests, on loopback: an OpenID Provider (the
 * `oidc-provider` package) with registered clients and an interaction that logs in whoever the
 * test says and consents at once, and a stand-in of GitHub's documented OAuth and API endpoints.
 * `browse` follows an authorization URL like a browser (redirects, a cookie jar) up to the
 * redirect back to the frontend.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import { CookieJar } from 'tough-cookie';

/** The frontend page providers send users back to (never visited: `browse` stops at it). */
export const REDIRECT_URI = 'https://app.example/auth/callback';

export interface ProviderUser {
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function serve(port = 0): Promise<{ url: string; setHandler(h: Handler): void; close(): Promise<void> }> {
  let handler: Handler = (_req, res) => res.end();
  const server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}`,
    setHandler: (h) => (handler = h),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface TestOpenIdProvider {
  issuer: string;
  /** Where it listens (its issuer, unless a proxy stands in front of it). */
  url: string;
  /** Who the next interaction logs in as. */
  loginAs(user: ProviderUser): void;
  close(): Promise<void>;
}

/**
 * An OpenID Provider on loopback; `clients` are registered with client_secret_post and
 * REDIRECT_URI. `port`: listen there (default: any free port). `issuer`: the issuer it names
 * itself (default: its own URL), for a proxy in front of it that passes the Host header on.
 */
export async function startOpenIdProvider(
  clients: { id: string; secret: string }[],
  options: { port?: number; issuer?: string } = {},
): Promise<TestOpenIdProvider> {
  const http = await serve(options.port);
  const accounts = new Map<string, ProviderUser>();
  let next: ProviderUser | null = null;
  const issuer = options.issuer ?? http.url;
  const provider = new Provider(issuer, {
    clients: clients.map((c) => ({
      client_id: c.id,
      client_secret: c.secret,
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: 'client_secret_post',
      grant_types: ['authorization_code'],
      response_types: ['code'],
    })),
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    findAccount: (_ctx: unknown, id: string) => {
      const user = accounts.get(id);
      return user ? { accountId: id, claims: async () => ({ ...user }) } : undefined;
    },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    pkce: { required: () => true },
    cookies: { keys: [randomBytes(16).toString('hex')] },
  });
  const callback = provider.callback();
  http.setHandler((req, res) => {
    if (!req.url?.startsWith('/interaction/')) return callback(req, res);
    void (async () => {
      const details = await provider.interactionDetails(req, res);
      if (details.prompt.name === 'login') {
        if (!next) throw new Error('the test did not say who logs in');
        accounts.set(next.sub, next);
        await provider.interactionFinished(req, res, { login: { accountId: next.sub } }, { mergeWithLastSubmission: false });
        return;
      }
      const grant = new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
      if (details.prompt.details.missingOIDCScope) grant.addOIDCScope(details.prompt.details.missingOIDCScope.join(' '));
      if (details.prompt.details.missingOIDCClaims) grant.addOIDCClaims(details.prompt.details.missingOIDCClaims);
      await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
    })().catch((err: unknown) => {
      res.statusCode = 500;
      res.end(String(err));
    });
  });
  return { issuer, url: http.url, loginAs: (user) => (next = user), close: http.close };
}

/**
 * Runs the authorization-code flow at `provider` as `client` (PKCE, the given nonce), the user
 * logging in as `user`, and returns the ID token the token endpoint answered: a genuine ID token
 * for someone else's flow, to swap into ours.
 */
export async function idTokenFrom(
  provider: TestOpenIdProvider,
  client: { id: string; secret: string },
  user: ProviderUser,
  nonce: string,
): Promise<string> {
  const metadata = (await (await fetch(`${provider.issuer}/.well-known/openid-configuration`)).json()) as Record<string, string>;
  const verifier = randomBytes(32).toString('base64url');
  const authorize = new URL(metadata.authorization_endpoint!);
  for (const [name, value] of Object.entries({
    client_id: client.id,
    redirect_uri: REDIRECT_URI,
    response_type: 'code',
    scope: 'openid email profile',
    state: randomBytes(16).toString('base64url'),
    nonce,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  })) {
    authorize.searchParams.set(name, value);
  }
  provider.loginAs(user);
  const back = await browse(authorize.href);
  const response = await fetch(metadata.token_endpoint!, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: back.get('code') ?? '',
      redirect_uri: REDIRECT_URI,
      client_id: client.id,
      client_secret: client.secret,
      code_verifier: verifier,
    }),
  });
  const body = (await response.json()) as { id_token?: string };
  if (!body.id_token) throw new Error(`no ID token from ${provider.issuer}: ${JSON.stringify(body)}`);
  return body.id_token;
}

export interface TamperingProxy {
  /** Its URL: the issuer of the OpenID Provider behind it. */
  url: string;
  /** The next token endpoint answer carries this ID token instead of the one the provider issued. */
  swapNextIdToken(idToken: string): void;
  /** How many token answers had their ID token swapped. */
  readonly swapped: number;
  close(): Promise<void>;
}

/**
 * A loopback HTTP proxy in front of an OpenID Provider whose issuer is the proxy's URL: it passes
 * every request on (the Host header too, so the discovery document names the proxy's endpoints,
 * the token endpoint included) and can swap the ID token of a token endpoint answer. Start it,
 * start the provider with `issuer: proxy.url`, then `forwardTo(provider.url)`.
 */
export async function startTamperingProxy(): Promise<TamperingProxy & { forwardTo(target: string): void }> {
  const http = await serve();
  let target = '';
  let swap: string | null = null;
  let swapped = 0;
  http.setHandler((req, res) => {
    // node's http client (not fetch, which sets Host itself) passes the Host header on, so the
    // provider names the proxy's endpoints.
    const upstream = request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
      const chunks: Buffer[] = [];
      answer.on('data', (chunk: Buffer) => chunks.push(chunk));
      answer.on('end', () => {
        let body = Buffer.concat(chunks);
        const headers = { ...answer.headers };
        if (req.method === 'POST' && req.url === '/token' && answer.statusCode === 200 && swap) {
          const json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
          json.id_token = swap;
          body = Buffer.from(JSON.stringify(json));
          headers['content-length'] = String(body.length);
          delete headers.etag;
          swap = null;
          swapped++;
        }
        res.writeHead(answer.statusCode ?? 502, headers);
        res.end(body);
      });
    });
    upstream.on('error', (err) => {
      res.statusCode = 502;
      res.end(String(err));
    });
    req.pipe(upstream);
  });
  return {
    url: http.url,
    forwardTo: (url) => (target = url),
    swapNextIdToken: (idToken) => (swap = idToken),
    get swapped() {
      return swapped;
    },
    close: http.close,
  };
}

export interface GitHubUser {
  id: number;
  login: string;
  name?: string | null;
  emails: { email: string; primary: boolean; verified: boolean }[];
}

export interface TestGitHub {
  webUrl: string;
  apiUrl: string;
  loginAs(user: GitHubUser): void;
  /** Access tokens the API was asked with, to check none is kept elsewhere. */
  issuedTokens: string[];
  close(): Promise<void>;
}

/**
 * GitHub's documented OAuth web flow and REST endpoints, as GitHub Enterprise Server lays them
 * out (API under /api/v3): GET /login/oauth/authorize (the user consents at once), POST
 * /login/oauth/access_token (form; JSON answer for Accept: application/json; PKCE S256 checked),
 * GET /user, GET /user/emails (Authorization: Bearer).
 */
export async function startGitHubStandIn(client: { id: string; secret: string }): Promise<TestGitHub> {
  const http = await serve();
  let current: GitHubUser | null = null;
  const codes = new Map<string, { user: GitHubUser; redirectUri: string; challenge: string }>();
  const tokens = new Map<string, GitHubUser>();
  const issuedTokens: string[] = [];
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  http.setHandler((req, res) => {
    const url = new URL(req.url!, http.url);
    if (req.method === 'GET' && url.pathname === '/login/oauth/authorize') {
      const redirect = new URL(url.searchParams.get('redirect_uri')!);
      if (url.searchParams.get('client_id') !== client.id || url.searchParams.get('code_challenge_method') !== 'S256' || !current) {
        return json(res, 400, { error: 'bad request' });
      }
      const code = randomBytes(10).toString('hex');
      codes.set(code, { user: current, redirectUri: redirect.href, challenge: url.searchParams.get('code_challenge')! });
      redirect.searchParams.set('code', code);
      redirect.searchParams.set('state', url.searchParams.get('state')!);
      res.writeHead(302, { location: redirect.href });
      return res.end();
    }
    if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        const form = new URLSearchParams(body);
        const grant = codes.get(form.get('code') ?? '');
        codes.delete(form.get('code') ?? '');
        const verifier = form.get('code_verifier') ?? '';
        const ok =
          grant &&
          form.get('client_id') === client.id &&
          form.get('client_secret') === client.secret &&
          form.get('redirect_uri') === grant.redirectUri &&
          createHash('sha256').update(verifier).digest('base64url') === grant.challenge;
        // GitHub answers a bad code with 200 and an error body.
        if (!ok) return json(res, 200, { error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' });
        const token = `gho_${randomBytes(16).toString('hex')}`;
        tokens.set(token, grant.user);
        issuedTokens.push(token);
        json(res, 200, { access_token: token, token_type: 'bearer', scope: 'read:user,user:email' });
      });
      return;
    }
    const user = tokens.get((req.headers.authorization ?? '').replace(/^Bearer /i, ''));
    if (req.method === 'GET' && url.pathname === '/api/v3/user') {
      return user ? json(res, 200, { id: user.id, login: user.login, name: user.name ?? null }) : json(res, 401, { message: 'Bad credentials' });
    }
    if (req.method === 'GET' && url.pathname === '/api/v3/user/emails') {
      return user ? json(res, 200, user.emails.map((e) => ({ ...e, visibility: null }))) : json(res, 401, { message: 'Bad credentials' });
    }
    json(res, 404, { message: 'Not Found' });
  });
  return { webUrl: http.url, apiUrl: `${http.url}/api/v3`, loginAs: (user) => (current = user), issuedTokens, close: http.close };
}

/** The redirect back to the frontend: its query parameters. */
export type Callback = URLSearchParams;

/** Follows `url` like a browser with its own cookie jar, until the redirect to REDIRECT_URI. */
export async function browse(url: string, jar = new CookieJar()): Promise<Callback> {
  let location = url;
  for (let hop = 0; hop < 20; hop++) {
    if (location.startsWith(REDIRECT_URI)) return new URL(location).searchParams;
    const cookie = await jar.getCookieString(location);
    const response = await fetch(location, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    for (const header of response.headers.getSetCookie()) await jar.setCookie(header, location);
    const next = response.headers.get('location');
    if (!next) throw new Error(`${location} answered ${response.status} without a redirect: ${(await response.text()).slice(0, 300)}`);
    location = new URL(next, location).href;
  }
  throw new Error('too many redirects');
}
