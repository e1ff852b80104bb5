import type { Plugin } from 'graphql-yoga';
import { MAX_ACCESS_TOKEN_LENGTH } from '../auth/access-tokens.js';

function refuse(status: number, message: string, fetchAPI: { Response: typeof Response }): Response {
  return new fetchAPI.Response(JSON.stringify({ errors: [{ message, extensions: { code: 'BAD_REQUEST' } }] }), {
    status,
    headers: { 'content-type': 'application/json' },
  });
}

/**
 * Refuses oversized requests before anything is parsed: a body over `bodyLimit` bytes (413),
 * a body without Content-Length (411, so the size is known up front), and an Authorization
 * header longer than any token this server issues (431).
 */
export function useRequestLimits(options: { bodyLimit: number }): Plugin {
  const maxAuthorization = MAX_ACCESS_TOKEN_LENGTH + 'Bearer '.length;
  return {
    onRequest({ request, fetchAPI, endResponse }) {
      if ((request.headers.get('authorization')?.length ?? 0) > maxAuthorization) {
        return endResponse(refuse(431, 'The Authorization header is too large.', fetchAPI));
      }
      if (request.method !== 'POST') return;
      const declared = request.headers.get('content-length');
      if (declared === null) {
        return endResponse(refuse(411, 'A Content-Length header is required.', fetchAPI));
      }
      const length = Number(declared);
      if (!Number.isFinite(length) || length > options.bodyLimit) {
        return endResponse(refuse(413, `The request body exceeds ${options.bodyLimit} bytes.`, fetchAPI));
      }
    },
  };
}
