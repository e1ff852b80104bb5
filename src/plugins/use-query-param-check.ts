import type { Plugin } from 'graphql-yoga';

/**
 * GET requests carry `variables` and `extensions` as JSON in the query string; yoga would
 * answer unparsable JSON there with a 500. Refuse it as the client's error instead (400).
 */
export function useQueryParamCheck(): Plugin {
  return {
    onRequest({ request, url, fetchAPI, endResponse }) {
      if (request.method !== 'GET') return;
      for (const name of ['variables', 'extensions']) {
        const value = url.searchParams.get(name);
        if (value === null) continue;
        try {
          JSON.parse(value);
        } catch {
          return endResponse(
            new fetchAPI.Response(
              JSON.stringify({ errors: [{ message: `The ${name} parameter is not valid JSON.`, extensions: { code: 'BAD_REQUEST' } }] }),
              { status: 400, headers: { 'content-type': 'application/json' } },
            ),
          );
        }
      }
    },
  };
}
