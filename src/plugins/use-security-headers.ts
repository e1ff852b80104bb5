import type { Plugin } from 'graphql-yoga';

// GraphiQL (when enabled) is an HTML page that loads its code from unpkg and runs web workers
// from blob: URLs; everything else the server sends is JSON and needs no sources at all.
const GRAPHIQL_CSP = [
  "default-src 'self'",
  "script-src 'self' 'unsafe-inline' https://unpkg.com",
  "style-src 'self' 'unsafe-inline' https://unpkg.com",
  "connect-src 'self' https://unpkg.com",
  'worker-src blob:',
  "img-src 'self' data: https://raw.githubusercontent.com",
  "font-src 'self' data: https://unpkg.com",
  "frame-ancestors 'none'",
].join('; ');
const API_CSP = "default-src 'none'; frame-ancestors 'none'";

/** Security headers on every response; `hsts` when the public URL is https. */
export function useSecurityHeaders(options: { hsts: boolean }): Plugin {
  return {
    onResponse({ response }) {
      const headers = response.headers;
      const html = headers.get('content-type')?.includes('text/html') ?? false;
      headers.set('X-Content-Type-Options', 'nosniff');
      headers.set('Referrer-Policy', 'no-referrer');
      headers.set('X-Frame-Options', 'DENY');
      headers.set('Content-Security-Policy', html ? GRAPHIQL_CSP : API_CSP);
      // Answers can carry tokens: no cache may keep them.
      headers.set('Cache-Control', 'no-store');
      if (options.hsts) headers.set('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
    },
  };
}
