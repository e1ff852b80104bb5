import type { Plugin } from 'graphql-yoga';
import { JWKS_PATH } from './use-jwks.js';

// GraphiQL (when enabled) is one self-contained HTML page (@graphql-yoga/render-graphiql): its
// script and styles are inline and its editor workers run from blob: URLs. It loads nothing
// from any other origin and talks only to this server.
const GRAPHIQL_CSP = [
  "default-src 'none'",
  "script-src 'unsafe-inline'",
  "style-src 'unsafe-inline'",
  'worker-src blob:',
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
const API_CSP = "default-src 'none'; frame-ancestors 'none'";

/** Security headers on every response; `hsts` when the public URL is https. */
export function useSecurityHeaders(options: { hsts: boolean }): Plugin {
  // Noted from the URL yoga has parsed, not parsed again for every response.
  const keySetRequests = new WeakSet<Request>();
  return {
    onRequest({ request, url }) {
      if (url.pathname === JWKS_PATH) keySetRequests.add(request);
    },
    onResponse({ request, response }) {
      const headers = response.headers;
      const html = headers.get('content-type')?.includes('text/html') ?? false;
      headers.set('X-Content-Type-Options', 'nosniff');
      headers.set('Referrer-Policy', 'no-referrer');
      headers.set('X-Frame-Options', 'DENY');
      headers.set('Content-Security-Policy', html ? GRAPHIQL_CSP : API_CSP);
      // Answers can carry tokens: no cache may keep them. The public key set is the exception.
      if (!keySetRequests.has(request)) headers.set('Cache-Control', 'no-store');
      if (options.hsts) headers.set('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
    },
  };
}
