import { GraphQLError } from 'graphql';
import { AuthError, InputError, RateLimitedError, type AccessErrorCode } from '../errors.js';

const MESSAGES: Record<AccessErrorCode, string> = {
  UNAUTHENTICATED: 'A valid access token is required.',
  FORBIDDEN: 'You are not allowed to do this.',
};

/** The GraphQL error for an access-control failure; the code is in `extensions.code`. */
export function accessError(code: AccessErrorCode): GraphQLError {
  return new GraphQLError(MESSAGES[code], { extensions: { code } });
}

/**
 * For fields whose type is not a result union: an expected failure becomes a GraphQL error
 * carrying the same ErrorCode in `extensions.code` (plus `field` for input errors and
 * `retryAfter` for rate limits).
 */
export async function withTypedErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (!(err instanceof AuthError)) throw err;
    throw new GraphQLError(err.message, {
      extensions: {
        code: err.code,
        ...(err instanceof InputError ? { field: err.field } : {}),
        ...(err instanceof RateLimitedError ? { retryAfter: err.retryAfter } : {}),
      },
    });
  }
}
