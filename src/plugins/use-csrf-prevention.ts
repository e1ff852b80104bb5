import { createGraphQLError, type Plugin } from 'graphql-yoga';

/**
 * Headers a cross-site page cannot send without a CORS preflight (which CORS_ORIGINS then
 * decides): Authorization, and the CSRF headers GraphQL clients send (yoga's, Apollo's).
 */
const PREFLIGHTED_HEADERS = ['authorization', 'x-graphql-yoga-csrf', 'apollo-require-preflight', 'x-apollo-operation-name'];

/** application/json and the +json types (application/graphql-response+json): never a "simple" content type. */
function isJsonContentType(value: string | null): boolean {
  const essence = value?.split(';')[0]!.trim().toLowerCase() ?? '';
  return essence === 'application/json' || /^application\/[a-z0-9.!#$&^_-]+\+json$/.test(essence);
}

/**
 * Refuses a POST that a page on another site could have sent without a preflight, unless it
 * proves otherwise: it carries Authorization or a CSRF header, or a JSON content type. Such a
 * "simple" POST (a form's urlencoded or multipart body, text/plain) could otherwise sign a
 * visitor in as the attacker, and, once a cookie carries a credential, act as the visitor.
 * An allow-list (JSON), not a list of the simple types, so that no content type a browser
 * deems simple can slip through. GET passes as it comes (urql sends queries so, with no extra
 * header): yoga refuses a mutation over GET (405), and a query sent cross-site carries no
 * credential and its answer is unreadable to the page.
 *
 * Our own plugin, not @graphql-yoga/plugin-csrf-prevention: that one asks for its header even
 * beside Authorization or on a GET, and refuses without an `extensions.code`.
 */
export function useCsrfPrevention(): Plugin {
  return {
    onRequestParse({ request }) {
      if (request.method !== 'POST') return;
      if (PREFLIGHTED_HEADERS.some((name) => request.headers.has(name))) return;
      if (isJsonContentType(request.headers.get('content-type'))) return;
      throw createGraphQLError(
        'This request could come from another site: send it as application/json, or with an Authorization or x-graphql-yoga-csrf header.',
        { extensions: { code: 'CSRF_REQUIRED', http: { status: 403 } } },
      );
    },
  };
}
