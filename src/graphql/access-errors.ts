import { GraphQLError } from 'graphql';
import { AuthError, ERRORS, type AccessErrorCode, type ErrorCodeOf, type ErrorEntry } from '../errors.js';

/** The GraphQL error for an access-control failure: the catalogue's message, the code in `extensions.code`. */
export function accessError(code: AccessErrorCode): GraphQLError {
  return new GraphQLError(ERRORS[code].message, { extensions: { code } });
}

/** The GraphQL error of an expected failure: its code and the extra fields its catalogue entry names. */
function typedError(error: AuthError): GraphQLError {
  const entry: ErrorEntry = ERRORS[error.code];
  const fields = entry.channel === 'result' ? Object.keys(entry.fields ?? {}) : [];
  const extra = Object.fromEntries(fields.map((field) => [field, Reflect.get(error, field) as unknown]));
  return new GraphQLError(error.message, { extensions: { code: error.code, ...extra } });
}

/**
 * For a field's description: the codes it answers as GraphQL errors (besides access control and
 * INVALID_INPUT, which any field with arguments may answer), each with its catalogue description.
 */
export function describeErrors(codes: readonly ErrorCodeOf<'result' | 'field'>[]): string {
  const lines = codes.map((code) => `- \`${code}\`: ${ERRORS[code].description}`);
  return ['Failures are GraphQL errors whose `extensions.code` is one of:', ...lines].join('\n');
}

/**
 * For fields whose type is not a result union: an expected failure becomes a GraphQL error
 * carrying its code in `extensions.code` and what its union member would carry beside it
 * (`field` for input errors, `retryAfter` for rate limits): typedError().
 */
export async function withTypedErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (!(err instanceof AuthError)) throw err;
    throw typedError(err);
  }
}
