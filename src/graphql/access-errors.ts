import { GraphQLError, responsePathAsArray, type GraphQLResolveInfo } from 'graphql';
import type { Viewer } from '../context.js';
import { withoutStackTraces } from './stack-traces.js';
import {
  AuthError,
  ERRORS,
  type AccessErrorCode,
  type ErrorCodeOf,
  type ErrorEntry,
  type UnauthenticatedReason,
} from '../errors.js';

/** The GraphQL error for an access-control failure: the catalogue's message, the code in `extensions.code`. */
export function accessError(
  code: AccessErrorCode,
  extensions: { reason?: UnauthenticatedReason } = {},
  at?: GraphQLResolveInfo,
): GraphQLError {
  return answerError(ERRORS[code].message, { code, ...extensions }, at);
}

/**
 * An expected refusal as a GraphQL error: an answer, not a fault, so without a stack trace.
 * Given the field it fails (`at`), it carries its own location and path, and graphql-js then
 * uses it as it is rather than wrapping it in a located copy.
 */
function answerError(message: string, extensions: Record<string, unknown>, at?: GraphQLResolveInfo): GraphQLError {
  const location = at ? { nodes: at.fieldNodes, path: responsePathAsArray(at.path) } : {};
  return withoutStackTraces(() => new GraphQLError(message, { ...location, extensions }));
}

/** What a client is told about a viewer who is not signed in: one of four words, never the check that failed. */
export function unauthenticatedReason(viewer: Exclude<Viewer, { kind: 'user' }>): UnauthenticatedReason {
  if (viewer.kind === 'anonymous') return 'MISSING';
  switch (viewer.reason) {
    case 'expired':
      return 'EXPIRED';
    case 'bad_scheme':
    case 'malformed':
    case 'oversized':
    case 'bad_signature':
    case 'bad_claims':
    case 'unknown_key':
      return 'MALFORMED';
    case 'token_revoked':
    case 'session_revoked':
    case 'session_expired':
    case 'user_missing':
    case 'user_disabled':
    case 'issued_before_cutoff':
      return 'REVOKED';
  }
}

/**
 * UNAUTHENTICATED for this viewer, with `extensions.reason` (MISSING, MALFORMED, EXPIRED, REVOKED);
 * FORBIDDEN when the viewer is signed in after all (a policy refused, not the token).
 */
export function unauthenticatedError(viewer: Viewer, at?: GraphQLResolveInfo): GraphQLError {
  if (viewer.kind === 'user') return accessError('FORBIDDEN', {}, at);
  return accessError('UNAUTHENTICATED', { reason: unauthenticatedReason(viewer) }, at);
}

/** The GraphQL error of an expected failure: its code and the extra fields its catalogue entry names. */
function typedError(error: AuthError): GraphQLError {
  const entry: ErrorEntry = ERRORS[error.code];
  const fields = entry.channel === 'result' ? Object.keys(entry.fields ?? {}) : [];
  const extra = Object.fromEntries(fields.map((field) => [field, Reflect.get(error, field) as unknown]));
  return answerError(error.message, { code: error.code, ...extra });
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
