import { GraphQLError } from 'graphql';
import type { AccessErrorCode } from '../errors.js';

const MESSAGES: Record<AccessErrorCode, string> = {
  UNAUTHENTICATED: 'A valid access token is required.',
  FORBIDDEN: 'You are not allowed to do this.',
};

/** The GraphQL error for an access-control failure; the code is in `extensions.code`. */
export function accessError(code: AccessErrorCode): GraphQLError {
  return new GraphQLError(MESSAGES[code], { extensions: { code } });
}
