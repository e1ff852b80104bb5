import { createGraphQLError, type Plugin } from 'graphql-yoga';
import { mapResultErrors } from './map-result-errors.js';

// graphql-js's didYouMean(): ` Did you mean "a"?`, `"a" or "b"?`, `"a", "b", or "c"?`, after an
// optional "the enum value " or "to use an inline fragment on ". Names are GraphQL names.
const SUGGESTION = / ?Did you mean (?:[a-z ]+ )?"[_A-Za-z][_0-9A-Za-z]*"(?:,? (?:or )?"[_A-Za-z][_0-9A-Za-z]*")*\?/g;

function stripSuggestions(message: string): string {
  return message.replace(SUGGESTION, '');
}

/**
 * Removes "Did you mean …?" from every error message of every answer. graphql-armor's
 * blockFieldSuggestion only covers validation errors; a misspelled input field sent in
 * variables is refused during variable coercion, whose message would still name the real
 * field (`Field "passwrd" is not defined by type "LoginInput". Did you mean "password"?`).
 */
export function useNoSuggestions(options: { enabled: boolean }): Plugin {
  if (!options.enabled) return {};
  return {
    onResultProcess({ result, setResult }) {
      setResult(
        mapResultErrors(result, (error) => {
          const message = stripSuggestions(error.message);
          if (message === error.message) return error;
          return createGraphQLError(message, {
            nodes: error.nodes,
            source: error.source,
            positions: error.positions,
            path: error.path,
            originalError: error.originalError,
            extensions: error.extensions,
          });
        }),
      );
    },
  };
}
