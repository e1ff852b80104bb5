import { parseCookie, stringifySetCookie, type SerializeOptions } from 'cookie';
import ipaddr from 'ipaddr.js';
import type { Config } from '../config.js';
import { InvalidRefreshTokenError } from '../errors.js';
import { defaultPublicUrl } from '../mail/templates.js';
import type { AuthTokens } from './session-service.js';

/** The cookie's name wherever browsers accept it: Secure, host-only, Path=/ (enforced by the prefix). */
export const REFRESH_COOKIE_NAME = '__Host-authgraph_refresh';
/** Its name on plain-HTTP localhost in development, where a `__Host-` (Secure) cookie is refused. */
export const DEV_REFRESH_COOKIE_NAME = 'authgraph_refresh';

/** How this deployment carries refresh tokens. */
export interface RefreshCookieSettings {
  transport: Config['refreshTokenTransport'];
  name: string;
  secure: boolean;
}

/** localhost, *.localhost, 127.0.0.0/8 and ::1 (also as ::ffff:127.x): names that never leave the machine. */
function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  return ipaddr.isValid(host) && ipaddr.process(host).range() === 'loopback';
}

/**
 * The cookie's name and Secure flag. Production always gets `__Host-` and Secure. Outside
 * production, when the public URL (PUBLIC_URL, else http://HOST:PORT) is plain http on a
 * loopback host AND the server listens only on a loopback address (HOST), the cookie drops
 * both: a Secure (so any `__Host-`) cookie set over http is refused by Safari and by HTTP
 * clients' cookie jars (Chromium and Firefox excuse localhost only), so a development set-up
 * would never keep it. Anything else keeps `__Host-` and Secure: an https URL; http on a LAN
 * address; and a loopback PUBLIC_URL with HOST=0.0.0.0 or a LAN address, where the server is
 * reachable from other machines over plain http and the fallback would let the token cross the
 * network in clear text (the PUBLIC_URL only says how links are written, not who connects).
 */
export function refreshCookieSettings(
  config: Pick<Config, 'refreshTokenTransport' | 'production' | 'publicUrl' | 'host' | 'port'>,
): RefreshCookieSettings {
  const url = new URL(config.publicUrl ?? defaultPublicUrl(config));
  const plainLocal = !config.production && url.protocol === 'http:' && isLoopbackHost(url.hostname) && isLoopbackHost(config.host);
  return {
    transport: config.refreshTokenTransport,
    name: plainLocal ? DEV_REFRESH_COOKIE_NAME : REFRESH_COOKIE_NAME,
    secure: !plainLocal,
  };
}

/** One request's side of the refresh cookie; in body mode it reads and sets nothing. */
export interface RefreshCookieJar {
  /** Whether AuthPayload.refreshToken carries the token (body and both modes; null in cookie mode). */
  readonly inBody: boolean;
  /** The refresh token the request's cookie carries, if any. */
  readonly presented: string | undefined;
  /** The refresh token a request names: the argument when given (it wins), else the cookie's. */
  tokenFrom(argument: string | null | undefined): string | undefined;
  /** Sets the cookie to the refresh token of `tokens` in this response; returns `tokens`. */
  deliver(tokens: AuthTokens): AuthTokens;
  /** Clears the cookie in this response (Max-Age=0, same name and attributes). */
  clear(): void;
  /**
   * Rotates the refresh token the request names (see tokenFrom) with `rotate`, the same call
   * for an argument and for the cookie, and sets the successor's cookie, unless the argument was
   * spent and the cookie belongs to another session that is still live (then the cookie is left
   * as it was; the successor is in the body). A rejected cookie (revoked, expired, replayed,
   * malformed) is cleared in the same response.
   */
  refresh(argument: string | null | undefined, rotate: (token: string) => Promise<AuthTokens>): Promise<AuthTokens>;
  /**
   * After a request ended sessions (logout, revokeSession): clears the cookie it presented
   * unless that cookie belongs to a session that is still live.
   */
  release(): Promise<void>;
}

/** The live session a refresh token names, or null (the session service answers). */
export type LiveSessionOf = (refreshToken: string) => Promise<string | null>;

/** The refresh cookie of each request: what it presented, and the Set-Cookie its response gets. */
export function createRefreshCookies(settings: RefreshCookieSettings, liveSessionOf: LiveSessionOf) {
  const enabled = settings.transport !== 'body';
  const attributes: SerializeOptions = { httpOnly: true, secure: settings.secure, sameSite: 'strict', path: '/' };
  // By request, as @whatwg-node's cookie plugin keeps its store: the resolvers (through the
  // context) and the response hook see the same request object.
  const setCookies = new WeakMap<Request, string>();
  const jars = new WeakMap<Request, RefreshCookieJar>();

  function createJar(request: Request): RefreshCookieJar {
    const header = enabled ? request.headers.get('cookie') : null;
    const presented = header ? parseCookie(header)[settings.name] || undefined : undefined;
    // The one place that decides whether the cookie is another live session's: a browser must
    // not forget a session the server still honours (both mode, where an argument may name
    // another session than the cookie's), nor keep one that is over.
    async function belongsToOtherLiveSession(sessionId: string | null): Promise<boolean> {
      if (!presented) return false;
      const live = await liveSessionOf(presented);
      return live !== null && live !== sessionId;
    }
    const jar: RefreshCookieJar = {
      inBody: settings.transport !== 'cookie',
      presented,
      tokenFrom: (argument) => argument || presented,
      deliver(tokens) {
        if (enabled) {
          setCookies.set(request, stringifySetCookie(settings.name, tokens.refreshToken, { ...attributes, maxAge: tokens.refreshExpiresIn }));
        }
        return tokens;
      },
      clear() {
        if (enabled) setCookies.set(request, stringifySetCookie(settings.name, '', { ...attributes, maxAge: 0 }));
      },
      async refresh(argument, rotate) {
        const token = jar.tokenFrom(argument);
        if (!token) throw new InvalidRefreshTokenError('missing');
        let tokens: AuthTokens;
        try {
          tokens = await rotate(token);
        } catch (err) {
          if (!argument && err instanceof InvalidRefreshTokenError) jar.clear();
          throw err;
        }
        if (argument && (await belongsToOtherLiveSession(tokens.sessionId))) return tokens;
        return jar.deliver(tokens);
      },
      async release() {
        if (presented && !(await belongsToOtherLiveSession(null))) jar.clear();
      },
    };
    return jar;
  }

  return {
    settings,
    /** This request's jar (made on first use). */
    jarFor(request: Request): RefreshCookieJar {
      let jar = jars.get(request);
      if (!jar) jars.set(request, (jar = createJar(request)));
      return jar;
    },
    /** The Set-Cookie header this request's response carries, if any. */
    setCookieOf: (request: Request): string | undefined => setCookies.get(request),
  };
}

export type RefreshCookies = ReturnType<typeof createRefreshCookies>;
