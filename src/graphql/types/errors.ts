import {
  AccountDisabledError,
  AuthError,
  EmailNotVerifiedError,
  EmailTakenError,
  ERROR_CODES,
  InputError,
  InvalidCredentialsError,
  InvalidRefreshTokenError,
  InvalidTokenError,
  RateLimitedError,
} from '../../errors.js';
import { builder } from '../builder.js';

export const ErrorCodeEnum = builder.enumType('ErrorCode', {
  description: 'Stable machine-readable codes of expected failures.',
  values: ERROR_CODES,
});

export const ErrorInterface = builder.interfaceRef<AuthError>('Error').implement({
  description: 'An expected failure of a mutation. Ask for `... on Error { code message }`.',
  fields: (t) => ({
    code: t.field({ type: ErrorCodeEnum, resolve: (error) => error.code }),
    message: t.exposeString('message', { description: 'Safe to show to the user.' }),
  }),
});

const common = (cls: abstract new (...args: never[]) => AuthError, description: string) => ({
  name: cls.name,
  description,
  interfaces: [ErrorInterface],
  isTypeOf: (value: unknown) => value instanceof cls,
});

builder.objectType(InputError, {
  ...common(InputError, 'An input field is malformed, or the password breaks the policy (code WEAK_PASSWORD).'),
  fields: (t) => ({ field: t.exposeString('field', { description: 'The input field at fault.' }) }),
});
builder.objectType(RateLimitedError, {
  ...common(RateLimitedError, 'Too many attempts; try again after `retryAfter` seconds.'),
  fields: (t) => ({ retryAfter: t.exposeInt('retryAfter', { description: 'Seconds to wait before trying again.' }) }),
});
builder.objectType(EmailTakenError, common(EmailTakenError, 'An account with this email already exists.'));
builder.objectType(
  InvalidCredentialsError,
  common(InvalidCredentialsError, 'The email or password is wrong (the two are not told apart).'),
);
builder.objectType(AccountDisabledError, common(AccountDisabledError, 'The account exists but has been disabled.'));
builder.objectType(
  InvalidRefreshTokenError,
  common(InvalidRefreshTokenError, 'The refresh token is malformed, unknown, expired, spent or revoked.'),
);
builder.objectType(
  InvalidTokenError,
  common(InvalidTokenError, 'The emailed token is malformed, unknown, expired, already used, meant for another purpose, or its account is disabled.'),
);
builder.objectType(
  EmailNotVerifiedError,
  common(EmailNotVerifiedError, 'The password is right, but this server requires a verified email address before sign-in.'),
);
