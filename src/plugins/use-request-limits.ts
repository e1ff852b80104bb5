import type { Plugin } from 'graphql-yoga';

function refuse(status: number, message: string, fetchAPI: { Response: typeof Response }): Response {
  return new fetchAPI.Response(JSON.stringify({ errors: [{ message, extensions: { code: 'BAD_REQUEST' } }] }), {
    status,
    headers: { 'content-type': 'application/json' },
  });
}

/**
 * An Authorization header past this is no client's mistake: refused outright (431). A token
 * merely longer than any we issue (MAX_ACCESS_TOKEN_LENGTH) is refused, unparsed, like any bad
 * token: UNAUTHENTICATED where one is needed, ignored by register, login and refresh.
 */
export const MAX_AUTHORIZATION_HEADER = 16 * 1024;

/**
 * Refuses oversized requests before anything is parsed: a body over `bodyLimit` bytes (413),
 * a body without Content-Length (411, so the size is known up front), and an absurdly long
 * Authorization header (431).
 */
export function useRequestLimits(options: { bodyLimit: number }): Plugin {
  const maxAuthorization = MAX_AUTHORIZATION_HEADER;
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
