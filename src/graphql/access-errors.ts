import type { AuthFailure } from '@pothos/plugin-scope-auth';
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

/** The scopes that failed in a scope-auth failure, at any depth, with the parameter each was asked with. */
function failedScopes(failure: AuthFailure): { scope: string; parameter: unknown }[] {
  if (failure.kind === 'AuthScope') return [{ scope: failure.scope, parameter: failure.parameter }];
  if (failure.kind === 'AnyAuthScopes' || failure.kind === 'AllAuthScopes') return failure.failures.flatMap(failedScopes);
  return [];
}

/**
 * The refusal of a field whose scopes failed (guarded() in policy.ts builds them: who may, in
 * `$any`, and beside it, in `$all`, the step-up scopes). Who may comes first: UNAUTHENTICATED
 * without a valid token, FORBIDDEN when the viewer is not among who may, unless only a second
 * factor is missing for a role of REQUIRE_SECOND_FACTOR_FOR_ROLES (`openedBySecondFactor` names
 * what a second factor would open). Then the step-up: SECOND_FACTOR_REQUIRED before
 * REAUTHENTICATION_REQUIRED, since a reauthenticate with a code cures both.
 */
export function refusalOf(
  viewer: Viewer,
  failure: AuthFailure,
  openedBySecondFactor: ReadonlySet<string>,
  at?: GraphQLResolveInfo,
): GraphQLError {
  if (viewer.kind !== 'user') return unauthenticatedError(viewer, at);
  // The field's map is evaluated as "any of" its one entry: with step-up, that entry is the $all.
  const single = failure.kind === 'AnyAuthScopes' && failure.failures.length === 1 ? failure.failures[0]! : failure;
  const all = single.kind === 'AllAuthScopes' ? single : null;
  const who = all ? all.failures.find((f) => f.kind === 'AnyAuthScopes') : failure;
  const stepUp = all ? all.failures.flatMap((f) => (f.kind === 'AuthScope' ? [f.scope] : [])) : [];
  if (who) {
    const blocked = failedScopes(who).some((f) => typeof f.parameter === 'string' && openedBySecondFactor.has(f.parameter));
    return accessError(blocked ? 'SECOND_FACTOR_REQUIRED' : 'FORBIDDEN', {}, at);
  }
  if (stepUp.includes('secondFactor') || stepUp.includes('secondFactorOnceEnrolled')) return accessError('SECOND_FACTOR_REQUIRED', {}, at);
  if (stepUp.includes('recentAuth')) return accessError('REAUTHENTICATION_REQUIRED', {}, at);
  return accessError('FORBIDDEN', {}, at);
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
