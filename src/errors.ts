/**
 * Every expected failure of the API, as one closed union. Each error has a stable `code`,
 * a message safe to show a client, and an optional internal `cause` that is logged, never shown.
 */
export const ERROR_CODES = [
  'INVALID_INPUT',
  'WEAK_PASSWORD',
  'EMAIL_TAKEN',
  'INVALID_CREDENTIALS',
  'ACCOUNT_DISABLED',
  'INVALID_REFRESH_TOKEN',
  'RATE_LIMITED',
  'NOT_FOUND',
  'UNKNOWN_ROLE',
  'LAST_ADMIN',
  'SELF_CHANGE',
  'ROLE_NOT_HELD',
  'INVALID_TOKEN',
  'EMAIL_NOT_VERIFIED',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Base of all expected failures; resolvers return these as union members. */
export abstract class AuthError extends Error {
  abstract readonly code: ErrorCode;
}

/** A field of the input is malformed or breaks a policy (WEAK_PASSWORD for the password policy). */
export class InputError extends AuthError {
  override name = 'InputError';
  constructor(
    readonly field: string,
    message: string,
    readonly code: 'INVALID_INPUT' | 'WEAK_PASSWORD' = 'INVALID_INPUT',
  ) {
    super(message);
  }
}

export class EmailTakenError extends AuthError {
  override name = 'EmailTakenError';
  readonly code = 'EMAIL_TAKEN';
  constructor() {
    super('An account with this email already exists.');
  }
}

export class InvalidCredentialsError extends AuthError {
  override name = 'InvalidCredentialsError';
  readonly code = 'INVALID_CREDENTIALS';
  constructor() {
    super('The email or password is incorrect.');
  }
}

export class AccountDisabledError extends AuthError {
  override name = 'AccountDisabledError';
  readonly code = 'ACCOUNT_DISABLED';
  constructor() {
    super('This account is disabled.');
  }
}

export class InvalidRefreshTokenError extends AuthError {
  override name = 'InvalidRefreshTokenError';
  readonly code = 'INVALID_REFRESH_TOKEN';
  constructor(cause?: string) {
    super('The refresh token is invalid, expired or revoked.', { cause });
  }
}

/** An emailed token (email verification, password reset) is malformed, unknown, expired, spent or for another purpose. */
export class InvalidTokenError extends AuthError {
  override name = 'InvalidTokenError';
  readonly code = 'INVALID_TOKEN';
  constructor(cause?: string) {
    super('This link is invalid or has expired. Ask for a new one.', { cause });
  }
}

/** The password was right, but REQUIRE_EMAIL_VERIFICATION is on and the address is not verified yet. */
export class EmailNotVerifiedError extends AuthError {
  override name = 'EmailNotVerifiedError';
  readonly code = 'EMAIL_NOT_VERIFIED';
  constructor() {
    super('Verify your email address before signing in: follow the link we mailed you, or reset your password.');
  }
}

export class RateLimitedError extends AuthError {
  override name = 'RateLimitedError';
  readonly code = 'RATE_LIMITED';
  constructor(readonly retryAfter: number) {
    super(`Too many attempts. Try again in ${retryAfter} seconds.`);
  }
}

/** The user an administrative operation names does not exist. */
export class UserNotFoundError extends AuthError {
  override name = 'UserNotFoundError';
  readonly code = 'NOT_FOUND';
  constructor() {
    super('No user has this id.');
  }
}

export class UnknownRoleError extends AuthError {
  override name = 'UnknownRoleError';
  readonly code = 'UNKNOWN_ROLE';
  constructor(role: string) {
    super(`There is no role named "${role}".`);
  }
}

/** Refused because it would leave no active administrator. */
export class LastAdminError extends AuthError {
  override name = 'LastAdminError';
  readonly code = 'LAST_ADMIN';
  constructor() {
    super('This is the last active admin: make another admin first.');
  }
}

/** Refused because administrators may not change their own roles or account state. */
export class SelfChangeError extends AuthError {
  override name = 'SelfChangeError';
  readonly code = 'SELF_CHANGE';
  constructor() {
    super('You cannot change your own roles or disable your own account; ask another admin.');
  }
}

/** Refused because the granter does not hold the role it would grant or revoke. */
export class RoleNotHeldError extends AuthError {
  override name = 'RoleNotHeldError';
  readonly code = 'ROLE_NOT_HELD';
  constructor(role: string) {
    super(`Only holders of the role "${role}" can grant or revoke it.`);
  }
}

/** Codes of access-control failures, sent as `extensions.code` of a GraphQL error. */
export type AccessErrorCode = 'UNAUTHENTICATED' | 'FORBIDDEN';
