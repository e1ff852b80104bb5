/**
 * Every failure a client can meet, in one catalogue (ERRORS, at the end): its code, the class
 * that raises it, the GraphQL type that carries it and the channel it reaches the client by.
 * Each error has a stable `code`, a message safe to show a client, and an optional internal
 * `cause` that is logged, never shown. README ("Errors") states the rule the channels follow.
 */

/** Base of the failures raised on purpose. Names itself after its class, as jose's errors do. */
export abstract class AuthError extends Error {
  abstract readonly code: ErrorCode;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A field of the input is malformed or breaks a policy (WEAK_PASSWORD for the password policy). */
export class InputError extends AuthError {
  constructor(
    readonly field: string,
    message: string,
    readonly code: 'INVALID_INPUT' | 'WEAK_PASSWORD' = 'INVALID_INPUT',
  ) {
    super(message);
  }
}

export class EmailTakenError extends AuthError {
  readonly code = 'EMAIL_TAKEN';
  constructor() {
    super('An account with this email already exists.');
  }
}

export class InvalidCredentialsError extends AuthError {
  readonly code = 'INVALID_CREDENTIALS';
  constructor() {
    super('The email or password is incorrect.');
  }
}

export class AccountDisabledError extends AuthError {
  readonly code = 'ACCOUNT_DISABLED';
  constructor() {
    super('This account is disabled.');
  }
}

export class InvalidRefreshTokenError extends AuthError {
  readonly code = 'INVALID_REFRESH_TOKEN';
  constructor(cause?: string) {
    super('The refresh token is invalid, expired or revoked.', { cause });
  }
}

/** An emailed token (email verification, password reset) is malformed, unknown, expired, spent or for another purpose. */
export class InvalidTokenError extends AuthError {
  readonly code = 'INVALID_TOKEN';
  constructor(cause?: string) {
    super('This link is invalid or has expired. Ask for a new one.', { cause });
  }
}

/** The password was right, but REQUIRE_EMAIL_VERIFICATION is on and the address is not verified yet. */
export class EmailNotVerifiedError extends AuthError {
  readonly code = 'EMAIL_NOT_VERIFIED';
  constructor(before: 'sign-in' | 'second-factor' = 'sign-in') {
    super(
      before === 'sign-in'
        ? 'Verify your email address before signing in: follow the link we mailed you, or reset your password.'
        : 'Verify your email address before adding a second factor: requestEmailVerification mails you a link.',
    );
  }
}

export class RateLimitedError extends AuthError {
  readonly code = 'RATE_LIMITED';
  /** `busy`: refused for the server's load (the argon2 queue is full), not for the client's attempts. */
  constructor(
    readonly retryAfter: number,
    cause: 'attempts' | 'busy' = 'attempts',
  ) {
    super(`${cause === 'busy' ? 'The server is busy' : 'Too many attempts'}. Try again in ${retryAfter} seconds.`);
  }
}

/**
 * Social sign-in failed: the provider is unknown to it or unreachable, or the state, code, ID
 * token or user data did not check out. The reason goes to `cause` (logged), never to the
 * client: a prober learns nothing about which check failed.
 */
export class SocialSignInError extends AuthError {
  readonly code = 'SOCIAL_SIGN_IN_FAILED';
  constructor(cause?: string) {
    super('Sign-in with this provider did not succeed. Start again.', { cause });
  }
}

/**
 * A provider's identity names the email of an existing account it is not linked to. It is
 * never linked automatically: sign in to that account first, then link the identity.
 */
export class AccountExistsError extends AuthError {
  readonly code = 'ACCOUNT_EXISTS';
  constructor() {
    super('An account with this email already exists. Sign in to it, then link this provider from your account.');
  }
}

/** Refused because the account would keep no way to sign in (no password, no identity, no passkey). */
export class LastSignInMethodError extends AuthError {
  readonly code = 'LAST_SIGN_IN_METHOD';
  constructor() {
    super('This is your only way to sign in: set a password (password reset), link another provider or add another passkey first.');
  }
}

/** A second-factor code (authenticator app or recovery code) is wrong, used already, or its challenge is spent, expired or unknown. */
export class InvalidSecondFactorError extends AuthError {
  readonly code = 'INVALID_SECOND_FACTOR';
  constructor(cause?: string) {
    super('The code is wrong or has expired.', { cause });
  }
}

/** The operation needs an enabled second factor and the user has none (regenerateRecoveryCodes). */
export class NoSecondFactorError extends AuthError {
  readonly code = 'NO_SECOND_FACTOR';
  constructor() {
    super('Turn on an authenticator app first.');
  }
}

/** The user an administrative operation names does not exist. */
export class UserNotFoundError extends AuthError {
  readonly code = 'NOT_FOUND';
  constructor() {
    super('No user has this id.');
  }
}

export class UnknownRoleError extends AuthError {
  readonly code = 'UNKNOWN_ROLE';
  constructor(role: string) {
    super(`There is no role named "${role}".`);
  }
}

/** Refused because it would leave no active administrator. */
export class LastAdminError extends AuthError {
  readonly code = 'LAST_ADMIN';
  constructor() {
    super('This is the last active admin: make another admin first.');
  }
}

/** Refused because administrators may not change their own roles or account state. */
export class SelfChangeError extends AuthError {
  readonly code = 'SELF_CHANGE';
  constructor() {
    super('You cannot change your own roles or disable your own account; ask another admin.');
  }
}

/** Refused because the granter does not hold the role it would grant or revoke. */
export class RoleNotHeldError extends AuthError {
  readonly code = 'ROLE_NOT_HELD';
  constructor(role: string) {
    super(`Only holders of the role "${role}" can grant or revoke it.`);
  }
}

/** Refused because the session, the account or the server holds as many viewerEvents streams as it may. */
export class TooManyStreamsError extends AuthError {
  readonly code = 'TOO_MANY_STREAMS';
  constructor(holder: 'session' | 'user' | 'server', limit: number) {
    super(
      holder === 'server'
        ? 'This server holds as many event streams as it may: try again later.'
        : `This ${holder === 'session' ? 'session' : 'account'} already has ${limit} open event streams: close one first.`,
    );
  }
}

/**
 * Why an UNAUTHENTICATED error refused the request, in its `extensions.reason`: enough for a
 * client to tell "refresh now" (EXPIRED, the only one a refresh can cure) from "sign in again",
 * never which check failed (a forger learns nothing from MALFORMED, a thief nothing from REVOKED).
 */
export const UNAUTHENTICATED_REASONS = {
  MISSING: 'No access token: no Authorization header.',
  MALFORMED:
    'The Authorization header is not `Bearer <token>`, or the token is not one of ours: not a JWT, a bad ' +
    'signature, an unknown key or algorithm, wrong claims.',
  EXPIRED: 'The access token is genuine but its `exp` has passed: refresh, then retry.',
  REVOKED:
    'The access token is genuine but no longer honoured: logged out, its session revoked or ended, its user ' +
    'disabled or gone, or issued before a password change or a sign-out everywhere. Sign in again.',
} as const;

/** The `extensions.reason` of an UNAUTHENTICATED error. */
export type UnauthenticatedReason = keyof typeof UNAUTHENTICATED_REASONS;

/**
 * Where a client meets a code (README "Errors" states the rule):
 * - `result`: a member of the field's `…Result` union, a type implementing `Error` whose `code`
 *   is in the `ErrorCode` enum; on a field without a result union, a GraphQL error with the code
 *   and the type's extra fields in `extensions`;
 * - `field`: a GraphQL error of the field that failed (fields without a result union only);
 * - `access`: a GraphQL error of any field that access control refuses;
 * - `request`: a GraphQL error refusing the whole request before it runs (no `data`);
 * - `fault`: the server failed, not the client (retry later, or report it).
 */
export type ErrorChannel = 'result' | 'field' | 'access' | 'request' | 'fault';

/** An extra field of an error type, beside `code` and `message`: a property of its class. */
export interface ErrorField {
  type: 'String' | 'Int';
  description: string;
}

// `any[]`: the constructor type TypeScript matches every class against (and Pothos's class parameter).
type ErrorClass = new (...args: any[]) => AuthError;

/** A code answered as a union member: `type` names its GraphQL type (the class's name), `fields` its extra fields. */
export interface ResultErrorEntry {
  channel: 'result';
  class: ErrorClass;
  type: string;
  description: string;
  fields?: Record<string, ErrorField>;
}

/** One code of the catalogue. `description` documents the code in the schema and the README. */
export type ErrorEntry =
  | ResultErrorEntry
  | { channel: 'field'; class: ErrorClass; description: string }
  | { channel: 'access'; message: string; description: string }
  | { channel: 'request' | 'fault'; description: string };

const INPUT_FIELDS = { field: { type: 'String', description: 'The input field at fault.' } } as const;

/**
 * The catalogue: every code a client can meet, as a union member or in `extensions.code`.
 * Adding an error is adding its class above and its line here: the GraphQL type, the
 * `ErrorCode` enum and the GraphQL errors of fields without a result union follow from it.
 */
export const ERRORS = {
  INVALID_INPUT: {
    channel: 'result',
    class: InputError,
    type: 'InputError',
    description: 'An input field is malformed.',
    fields: INPUT_FIELDS,
  },
  WEAK_PASSWORD: {
    channel: 'result',
    class: InputError,
    type: 'InputError',
    description: 'The new password breaks the policy (8 to 256 characters, not a common password), or is the current one.',
    fields: INPUT_FIELDS,
  },
  EMAIL_TAKEN: {
    channel: 'result',
    class: EmailTakenError,
    type: 'EmailTakenError',
    description: 'An account with this email already exists.',
  },
  INVALID_CREDENTIALS: {
    channel: 'result',
    class: InvalidCredentialsError,
    type: 'InvalidCredentialsError',
    description: 'The email or password is wrong (the two are not told apart).',
  },
  ACCOUNT_DISABLED: {
    channel: 'result',
    class: AccountDisabledError,
    type: 'AccountDisabledError',
    description: 'The account exists but has been disabled.',
  },
  EMAIL_NOT_VERIFIED: {
    channel: 'result',
    class: EmailNotVerifiedError,
    type: 'EmailNotVerifiedError',
    description:
      'The email address is not verified, and this needs it: sign-in, on a server that requires a verified address ' +
      '(the password was right), or adding a second factor.',
  },
  INVALID_REFRESH_TOKEN: {
    channel: 'result',
    class: InvalidRefreshTokenError,
    type: 'InvalidRefreshTokenError',
    description: 'The refresh token is malformed, unknown, expired, spent or revoked.',
  },
  INVALID_TOKEN: {
    channel: 'result',
    class: InvalidTokenError,
    type: 'InvalidTokenError',
    description:
      'The emailed token is malformed, unknown, expired, already used, meant for another purpose, or its account is disabled.',
  },
  RATE_LIMITED: {
    channel: 'result',
    class: RateLimitedError,
    type: 'RateLimitedError',
    description: 'Too many attempts, or the server is too busy to check a password now; try again after `retryAfter` seconds.',
    fields: { retryAfter: { type: 'Int', description: 'Seconds to wait before trying again.' } },
  },
  SOCIAL_SIGN_IN_FAILED: {
    channel: 'result',
    class: SocialSignInError,
    type: 'SocialSignInError',
    description:
      'Social sign-in failed: the provider is unreachable, or the state is unknown, spent, expired or of another provider, ' +
      'or the code, ID token or user data did not check out. Start again.',
  },
  ACCOUNT_EXISTS: {
    channel: 'result',
    class: AccountExistsError,
    type: 'AccountExistsError',
    description:
      "The provider's email belongs to an account this identity is not linked to: sign in to it, then link the identity.",
  },
  INVALID_SECOND_FACTOR: {
    channel: 'result',
    class: InvalidSecondFactorError,
    type: 'InvalidSecondFactorError',
    description:
      'The second-factor code is wrong or was used already, or the sign-in challenge is unknown, expired, spent or ' +
      'dead after too many wrong codes (then sign in again), or the session gave reauthenticate too many wrong ' +
      'codes or passkey assertions (then reauthenticate with the password, or sign in again).',
  },
  NO_SECOND_FACTOR: {
    channel: 'field',
    class: NoSecondFactorError,
    description: 'The user has no second factor enabled (recovery codes stand in for one).',
  },
  NOT_FOUND: { channel: 'field', class: UserNotFoundError, description: 'No user has this id.' },
  UNKNOWN_ROLE: { channel: 'field', class: UnknownRoleError, description: 'No role has this name.' },
  SELF_CHANGE: {
    channel: 'field',
    class: SelfChangeError,
    description: 'Administrators may not change their own roles or disable their own account.',
  },
  ROLE_NOT_HELD: { channel: 'field', class: RoleNotHeldError, description: 'Only holders of a role may grant or revoke it.' },
  LAST_ADMIN: { channel: 'field', class: LastAdminError, description: 'The change would leave no active administrator.' },
  TOO_MANY_STREAMS: {
    channel: 'field',
    class: TooManyStreamsError,
    description:
      'viewerEvents: the session (5), the account (20) or the server (VIEWER_EVENTS_MAX_STREAMS) already holds ' +
      'the most streams it may: close one first, or try again later.',
  },
  LAST_SIGN_IN_METHOD: {
    channel: 'field',
    class: LastSignInMethodError,
    description:
      'Unlinking this identity or removing this passkey would leave the account no way to sign in (no password, ' +
      'no other identity, no other passkey).',
  },
  UNAUTHENTICATED: {
    channel: 'access',
    message: 'A valid access token is required.',
    description:
      'The field needs a signed-in user: the access token is missing, malformed, forged, expired or revoked, or its user is disabled. ' +
      '`extensions.reason` says which of MISSING, MALFORMED, EXPIRED (refresh, then retry) or REVOKED (sign in again).',
  },
  FORBIDDEN: {
    channel: 'access',
    message: 'You are not allowed to do this.',
    description: 'The signed-in user lacks the permission, role or ownership the field requires.',
  },
  REAUTHENTICATION_REQUIRED: {
    channel: 'access',
    message: 'Confirm it is you: call reauthenticate, then retry.',
    description:
      'The field needs a recent sign-in (`recentAuth`: within REAUTH_MAX_AGE seconds) and the session was authenticated ' +
      'longer ago: call `reauthenticate`, then retry with the access token it returns.',
  },
  SECOND_FACTOR_REQUIRED: {
    channel: 'access',
    message: 'This needs a session signed in with a second factor.',
    description:
      'The field needs a session that passed a second factor (`secondFactor`, or a role listed in ' +
      'REQUIRE_SECOND_FACTOR_FOR_ROLES) and this one did not: call `reauthenticate` with a code, then retry.',
  },
  BAD_REQUEST: {
    channel: 'request',
    description:
      'The HTTP request is refused: more than one Authorization header, no Content-Length, a body or header too large, ' +
      'a mutation over GET, a batch, no query, parameters that are not JSON (HTTP 4xx).',
  },
  CSRF_REQUIRED: {
    channel: 'request',
    description:
      'A POST that another site could have sent without a CORS preflight (a form or text/plain body, no ' +
      'Authorization): send it as application/json, or with an Authorization or x-graphql-yoga-csrf header (HTTP 403).',
  },
  GRAPHQL_PARSE_FAILED: { channel: 'request', description: 'The operation is not valid GraphQL (from yoga).' },
  GRAPHQL_VALIDATION_FAILED: {
    channel: 'request',
    description:
      'The operation does not validate against the schema, holds more than one sensitive field, or asks for ' +
      'introspection in production (from yoga).',
  },
  SERVICE_UNAVAILABLE: {
    channel: 'fault',
    description: 'The database did not answer in time (HTTP 503): retry later.',
  },
  INTERNAL_SERVER_ERROR: {
    channel: 'fault',
    description: 'An unexpected failure, answered as "Unexpected error." and logged (from yoga).',
  },
} as const;

// The catalogue's shape, checked apart from its declaration: a `satisfies` there would make the
// classes' `code: ErrorCode` (keyof ERRORS) refer to itself.
ERRORS satisfies Record<ErrorCode, ErrorEntry>;

/** Every code of the catalogue. */
export type ErrorCode = keyof typeof ERRORS;

/** The codes of a channel. */
export type ErrorCodeOf<Channel extends ErrorChannel> = {
  [Code in ErrorCode]: (typeof ERRORS)[Code]['channel'] extends Channel ? Code : never;
}[ErrorCode];

/** Codes a client meets as `Error.code` of a union member: the values of the GraphQL `ErrorCode` enum. */
export type ResultErrorCode = ErrorCodeOf<'result'>;

/** Codes of access-control failures, sent as `extensions.code` of a GraphQL error. */
export type AccessErrorCode = ErrorCodeOf<'access'>;

/** The codes of a channel, in catalogue order. */
export function errorCodesOf<Channel extends ErrorChannel>(channel: Channel): ErrorCodeOf<Channel>[] {
  return (Object.keys(ERRORS) as ErrorCode[]).filter((code): code is ErrorCodeOf<Channel> => ERRORS[code].channel === channel);
}
