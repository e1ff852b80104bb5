import { createGraphQLError, type Plugin } from 'graphql-yoga';

/** The part of Node's server context this reads: the header lines as they came in. */
interface NodeServerContext {
  req?: { rawHeaders?: readonly string[] };
}

/** How many credentials the request carries: Authorization header lines, or comma-joined values. */
function countAuthorizations(request: Request, server: NodeServerContext): number {
  // Node keeps only the first of repeated Authorization lines in `headers` (what the Request is
  // built from), so repeats show only in the raw lines. fetch, proxies and Node's
  // joinDuplicateHeaders join repeats with commas instead; a Bearer token never has one.
  const raw = server.req?.rawHeaders ?? [];
  let lines = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]?.toLowerCase() === 'authorization') lines += 1;
  const values = request.headers.get('authorization')?.split(',').length ?? 0;
  return Math.max(lines, values);
}

/**
 * Refuses a request with more than one Authorization header (400, RFC 6750 §3.1
 * invalid_request). Which of two credentials counts must not depend on the hop: this server
 * would take the first, a gateway in front of it may take the last, and each would act for a
 * different user.
 */
export function useSingleAuthorization(): Plugin<Record<string, unknown>, NodeServerContext> {
  return {
    onRequestParse({ request, serverContext }) {
      if (countAuthorizations(request, serverContext) <= 1) return;
      throw createGraphQLError('Send at most one Authorization header, with one Bearer token.', {
        extensions: {
          code: 'BAD_REQUEST',
          http: { status: 400, headers: { 'WWW-Authenticate': 'Bearer error="invalid_request"' } },
        },
      });
    },
  };
}
