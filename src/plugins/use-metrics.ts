import { timingSafeEqual } from 'node:crypto';
import type { Plugin } from 'graphql-yoga';
import { sha256Digest } from '../crypto/digest.js';
import { HTTP_ROUTES, type HttpRoute, type Metrics } from '../metrics.js';

export const METRICS_PATH = '/metrics';

const ROUTES = new Set<string>(HTTP_ROUTES);

/** The route label of a request: its path when it is one of ours, else `other` (never the raw path). */
function routeOf(url: string): HttpRoute {
  const { pathname } = new URL(url);
  return ROUTES.has(pathname) ? (pathname as HttpRoute) : 'other';
}

/**
 * Whether the request bears the metrics token. Both sides are hashed first, so the comparison
 * runs in constant time over equal lengths and reveals neither the token's content nor its length.
 */
function bearsToken(request: Request, expected: Buffer): boolean {
  const match = /^Bearer +(\S+) *$/i.exec(request.headers.get('authorization') ?? '');
  if (!match) return false;
  return timingSafeEqual(digestOf(match[1]!), expected);
}

const digestOf = (text: string) => Buffer.from(sha256Digest(text, 'hex'), 'hex');

/**
 * `GET /metrics` in Prometheus text format, and the request latency histogram. Off (404) unless
 * enabled; then only for `Authorization: Bearer <METRICS_TOKEN>` (401 otherwise). The answer
 * keeps the `Cache-Control: no-store` every response gets.
 */
export function useMetrics(options: { enabled: false } | { enabled: true; token: string; metrics: Metrics }): Plugin {
  if (!options.enabled) {
    return {
      onRequest({ url, fetchAPI, endResponse }) {
        if (url.pathname === METRICS_PATH) endResponse(new fetchAPI.Response('Not Found', { status: 404 }));
      },
    };
  }
  const { metrics } = options;
  const expected = digestOf(options.token);
  const startedAt = new WeakMap<Request, number>();
  return {
    // Wraps the whole handling, the plugins that answer before this one included (/health).
    instrumentation: {
      request({ request }, wrapped) {
        startedAt.set(request, performance.now());
        return wrapped();
      },
    },
    async onRequest({ request, url, fetchAPI, endResponse }) {
      if (url.pathname !== METRICS_PATH) return;
      if (!bearsToken(request, expected)) {
        return endResponse(new fetchAPI.Response('Unauthorized', { status: 401, headers: { 'www-authenticate': 'Bearer' } }));
      }
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        return endResponse(new fetchAPI.Response(null, { status: 405, headers: { allow: 'GET, HEAD' } }));
      }
      const body = request.method === 'HEAD' ? null : await metrics.registry.metrics();
      return endResponse(new fetchAPI.Response(body, { status: 200, headers: { 'content-type': metrics.registry.contentType } }));
    },
    onResponse({ request, response }) {
      const started = startedAt.get(request);
      if (started === undefined) return;
      startedAt.delete(request);
      metrics.observeRequest(routeOf(request.url), response.status, (performance.now() - started) / 1000);
    },
  };
}
