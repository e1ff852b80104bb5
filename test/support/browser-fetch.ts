/**
 * The global fetch as a browser runs it for a page of another origin than the API (an app on
 * http://app.example.com:5173 calling http://api.example.com:<port>): what the frontend clients
 * meet in a real browser, reduced to what decides whether their requests work.
 *
 * - Every request carries `Origin: <page origin>`.
 * - A request a page could not send without asking first (a method other than GET/HEAD/POST, a
 *   header outside the CORS-safelisted ones: Authorization, a JSON content type, any custom
 *   header) is preceded by a preflight (OPTIONS, no cookies), which must answer 2xx and allow the
 *   origin, the method and every header (and credentials, for `credentials: 'include'`); its
 *   answer is reused for Access-Control-Max-Age seconds, as browsers cache it.
 * - The answer must allow the origin: with `credentials: 'include'` only
 *   `Access-Control-Allow-Origin: <exact origin>` with `Access-Control-Allow-Credentials: true`
 *   does; otherwise the origin or `*`. A refusal rejects with a TypeError ("Failed to fetch"),
 *   as fetch does in a browser, and the page reads nothing of the answer.
 * - Cookies are sent and stored only with `credentials: 'include'` (the other modes send none to
 *   another origin), through a tough-cookie jar told the SameSite context: a page of the API's
 *   site (app.example.com → api.example.com is cross-origin but same-site) is `strict`, so a
 *   SameSite=Strict cookie goes; a page of another site is `none`, and it never does.
 * - The page reads only the CORS-safelisted response headers and those exposed
 *   (Access-Control-Expose-Headers); never Set-Cookie.
 *
 * The API's name is the browser's view only: requests go to the real server on 127.0.0.1 (as a
 * hosts-file entry would send them). The server sees the page's Origin and the jar's Cookie.
 */
import { CookieJar, getPublicSuffix } from 'tough-cookie';

/** A page on the API's site (example.com), on another origin. */
export const SAME_SITE_APP_ORIGIN = 'http://app.example.com:5173';
/** A page of another site than the API's (example.org). */
export const CROSS_SITE_APP_ORIGIN = 'http://app.example.org:5173';
/** Where the browser believes the API is: same site as SAME_SITE_APP_ORIGIN. */
export const API_HOST = 'api.example.com';

const SAFELISTED_REQUEST_HEADERS = new Set(['accept', 'accept-language', 'content-language', 'content-type']);
const SIMPLE_CONTENT_TYPES = new Set(['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain']);
const SIMPLE_METHODS = new Set(['GET', 'HEAD', 'POST']);
const SAFELISTED_RESPONSE_HEADERS = new Set(['cache-control', 'content-language', 'content-length', 'content-type', 'expires', 'last-modified', 'pragma']);

/** A browser's cookies and its CORS checks around the global fetch. */
export interface Browser {
  jar: CookieJar;
  /** The origin of the page the clients run in (SAME_SITE_APP_ORIGIN unless changed). */
  pageOrigin: string;
  /** The URL a page uses for a path of the API, e.g. `/graphql`. */
  apiUrl(path: string): string;
  /** Preflights and requests the browser refused, oldest first (the reason of each). */
  refusals: string[];
  restore(): void;
}

/** The header names of a request that make it non-simple (they need a preflight), lower case, sorted. */
function unsafeHeaderNames(headers: Headers): string[] {
  const names: string[] = [];
  headers.forEach((value, name) => {
    const simple =
      SAFELISTED_REQUEST_HEADERS.has(name) &&
      value.length <= 128 &&
      (name !== 'content-type' || SIMPLE_CONTENT_TYPES.has(value.split(';')[0]!.trim().toLowerCase()));
    if (!simple) names.push(name);
  });
  return names.sort();
}

/** The listed values of an Access-Control-Allow-* header, lower case. */
const listed = (header: string | null) => (header ?? '').split(',').map((v) => v.trim().toLowerCase()).filter(Boolean);

/** The site (scheme and registrable domain) of a URL, as SameSite compares them. */
function siteOf(url: string): string {
  const { protocol, hostname } = new URL(url);
  return `${protocol}//${getPublicSuffix(hostname) ?? hostname}`;
}

/**
 * Replaces the global fetch with a browser's, for pages calling the API at `http://API_HOST:<port>`,
 * served by the real server at `serverOrigin` (http://127.0.0.1:<port>). Returns the browser.
 */
export function installBrowserFetch(serverOrigin: string): Browser {
  const original = globalThis.fetch;
  const server = new URL(serverOrigin);
  const apiOrigin = `${server.protocol}//${API_HOST}:${server.port}`;
  const jar = new CookieJar();
  /** Preflight answers kept: key (origin, URL, method, credentials, headers) → until (ms). */
  const preflights = new Map<string, number>();

  const browser: Browser = {
    jar,
    pageOrigin: SAME_SITE_APP_ORIGIN,
    apiUrl: (path) => `${apiOrigin}${path}`,
    refusals: [],
    restore: () => void (globalThis.fetch = original),
  };

  const refuse = (why: string): never => {
    browser.refusals.push(why);
    throw new TypeError(`Failed to fetch (CORS: ${why})`);
  };

  /** Whether an answer lets the page read it (the CORS check). */
  function allowsOrigin(response: Response, credentials: boolean): string | null {
    const allowOrigin = response.headers.get('access-control-allow-origin');
    if (credentials) {
      if (allowOrigin !== browser.pageOrigin) return `Access-Control-Allow-Origin is ${allowOrigin}, not ${browser.pageOrigin}`;
      if (response.headers.get('access-control-allow-credentials') !== 'true') return 'no Access-Control-Allow-Credentials: true';
      return null;
    }
    return allowOrigin === '*' || allowOrigin === browser.pageOrigin ? null : `Access-Control-Allow-Origin is ${allowOrigin}`;
  }

  async function preflight(wire: string, url: string, method: string, names: string[], credentials: boolean): Promise<void> {
    const key = JSON.stringify([browser.pageOrigin, url, method, credentials, names]);
    if ((preflights.get(key) ?? 0) > Date.now()) return;
    const headers: Record<string, string> = { origin: browser.pageOrigin, 'access-control-request-method': method };
    if (names.length) headers['access-control-request-headers'] = names.join(',');
    const response = await original(wire, { method: 'OPTIONS', headers });
    await response.arrayBuffer();
    if (!response.ok) refuse(`preflight answered ${response.status}`);
    const why = allowsOrigin(response, credentials);
    if (why) refuse(`preflight: ${why}`);
    const methods = listed(response.headers.get('access-control-allow-methods'));
    if (!SIMPLE_METHODS.has(method) && !methods.includes(method.toLowerCase()) && !(methods.includes('*') && !credentials)) {
      refuse(`preflight does not allow ${method}`);
    }
    const allowedHeaders = listed(response.headers.get('access-control-allow-headers'));
    for (const name of names) {
      // `*` never covers Authorization, and covers nothing for a credentialed request.
      const wildcard = allowedHeaders.includes('*') && !credentials && name !== 'authorization';
      if (!allowedHeaders.includes(name) && !wildcard) refuse(`preflight does not allow the header ${name}`);
    }
    const maxAge = Number(response.headers.get('access-control-max-age') ?? 5);
    preflights.set(key, Date.now() + Math.min(maxAge, 7200) * 1000);
  }

  globalThis.fetch = async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    const target = new URL(url);
    if (target.origin !== apiOrigin) return original(input, init);
    const wire = `${serverOrigin}${target.pathname}${target.search}`;
    const method = (init?.method ?? 'GET').toUpperCase();
    const credentials = init?.credentials === 'include';
    const headers = new Headers(init?.headers);
    // A page cannot set these; the browser does.
    for (const name of ['origin', 'cookie', 'host']) headers.delete(name);

    const names = unsafeHeaderNames(headers);
    if (!SIMPLE_METHODS.has(method) || names.length) await preflight(wire, url, method, names, credentials);

    const sameSiteContext = siteOf(browser.pageOrigin) === siteOf(url) ? 'strict' : 'none';
    headers.set('origin', browser.pageOrigin);
    if (credentials) {
      const cookie = await jar.getCookieString(url, { sameSiteContext });
      if (cookie) headers.set('cookie', cookie);
    }
    const response = await original(wire, { ...init, headers });
    // The network stores cookies before the page's CORS check, as browsers do; one it refuses
    // (SameSite=Strict from a cross-site request) is dropped silently, as browsers do.
    if (credentials) {
      for (const setCookie of response.headers.getSetCookie()) await jar.setCookie(setCookie, url, { sameSiteContext, ignoreError: true });
    }
    const why = allowsOrigin(response, credentials);
    if (why) {
      await response.arrayBuffer();
      refuse(why);
    }
    const exposed = new Set([...SAFELISTED_RESPONSE_HEADERS, ...listed(response.headers.get('access-control-expose-headers'))]);
    const visible = new Headers();
    response.headers.forEach((value, name) => {
      if (exposed.has(name) && name !== 'set-cookie') visible.append(name, value);
    });
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers: visible });
  };
  return browser;
}
