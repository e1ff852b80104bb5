import type { Plugin } from 'graphql-yoga';
import type { RefreshCookies } from '../sessions/refresh-cookie.js';

/**
 * Adds the refresh cookie a resolver set or cleared (REFRESH_TOKEN_TRANSPORT cookie or both) to
 * the response as Set-Cookie. Resolvers reach the cookie through `ctx.refreshCookie`.
 */
export function useRefreshCookie(cookies: RefreshCookies): Plugin {
  return {
    onResponse({ request, response }) {
      const header = cookies.setCookieOf(request);
      if (header) response.headers.append('set-cookie', header);
    },
  };
}
