import type { Plugin } from 'graphql-yoga';
import type { PublishedKeySet } from '../tokens/key-ring.js';

export const JWKS_PATH = '/.well-known/jwks.json';

/**
 * `GET /.well-known/jwks.json`: the public keys downstream services verify access tokens with
 * (next, current and retired; never a private member), cacheable for JWKS_MAX_AGE, with an ETag
 * (304 on a matching If-None-Match). 404 when there is nothing to publish (HS*).
 */
export function useJwks(options: { keySet: () => PublishedKeySet | null; maxAge: number }): Plugin {
  return {
    onRequest({ request, url, fetchAPI, endResponse }) {
      if (url.pathname !== JWKS_PATH) return;
      const published = options.keySet();
      if (!published) return endResponse(new fetchAPI.Response('Not Found', { status: 404 }));
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        return endResponse(new fetchAPI.Response(null, { status: 405, headers: { allow: 'GET, HEAD' } }));
      }
      const headers = {
        'cache-control': `public, max-age=${options.maxAge}`,
        etag: published.etag,
        'content-type': 'application/jwk-set+json',
        // Any origin may read the public keys (browsers verifying tokens, tools).
        'access-control-allow-origin': '*',
      };
      const matches = request.headers
        .get('if-none-match')
        ?.split(',')
        .some((tag) => tag.trim().replace(/^W\//, '') === published.etag);
      if (matches) return endResponse(new fetchAPI.Response(null, { status: 304, headers }));
      return endResponse(new fetchAPI.Response(request.method === 'HEAD' ? null : published.body, { status: 200, headers }));
    },
  };
}
