import { createGraphQLError, type Plugin } from 'graphql-yoga';
import { mapResultErrors } from './map-result-errors.js';

/**
 * Drops `extensions.originalError` from every error of every answer. Yoga puts the parser's
 * exception there when a POST body is not JSON (`{ name: "SyntaxError", message: … }`): an
 * internal detail the client does not need beside "POST body sent invalid JSON." and
 * BAD_REQUEST. The answer stays a 400: yoga keeps a request error's status for
 * `Accept: application/json` only while originalError is there, so its `spec` mark goes too.
 */
export function useNoOriginalError(): Plugin {
  return {
    onResultProcess({ result, setResult }) {
      setResult(
        mapResultErrors(result, (error) => {
          if (!error.extensions?.originalError) return error;
          const { originalError: _internal, http, ...extensions } = error.extensions;
          if (http) {
            const { spec: _spec, ...kept } = http as Record<string, unknown>;
            extensions.http = kept;
          }
          return createGraphQLError(error.message, {
            nodes: error.nodes,
            source: error.source,
            positions: error.positions,
            path: error.path,
            originalError: error.originalError,
            extensions,
          });
        }),
      );
    },
  };
}
