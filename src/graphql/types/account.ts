import {
  InputError,
  InvalidCredentialsError,
  InvalidTokenError,
  RateLimitedError,
} from '../../errors.js';
import { SecondFactorRequired } from '../../credentials/sign-in-challenges.js';
import { changeAsViewer, claimsOf } from '../viewer-claims.js';
import { emailKey } from '../arguments.js';
import { builder } from '../builder.js';
import { guarded } from '../policy.js';
import { AuthPayload } from './auth.js';
import { UserRef } from './user.js';

const NEW_PASSWORD = '8 to 256 characters, not a common password (the same policy as register).';

builder.mutationFields((t) => ({
  changePassword: t.field({
    type: AuthPayload,
    errors: {
      types: [InvalidCredentialsError, InputError, RateLimitedError],
      union: { name: 'ChangePasswordResult' },
    },
    args: {
      currentPassword: t.arg.string({ required: true }),
      newPassword: t.arg.string({ required: true, description: NEW_PASSWORD }),
    },
    ...guarded(
      { authenticated: true, recentAuth: true },
      'Changes your password. Every session of yours, this one included, is revoked with all its tokens; the ' +
        'answer carries the tokens of a new session to continue with. InvalidCredentialsError: the current ' +
        'password is wrong. InputError (field newPassword, code WEAK_PASSWORD): the policy refuses the new ' +
        'password, or it is the current one. The new session keeps the factors this one passed.',
    ),
    rateLimit: { account: ['CHANGE_PASSWORD_ACCOUNT'], ip: ['CHANGE_PASSWORD_IP'] },
    resolve: async (_root, args, ctx) =>
      ctx.refreshCookie.deliver(
        await changeAsViewer(ctx, (claims) => ctx.services.passwordChange.changePassword({ claims, ...args, request: ctx.request })),
      ),
  }),
  requestEmailVerification: t.boolean({
    ...guarded(
      { authenticated: true },
      'Mails you a link that verifies your email address (valid EMAIL_VERIFICATION_TTL seconds, once); a newer ' +
        'link replaces older ones. Nothing is sent when the address is verified already. True once the mail is sent.',
    ),
    rateLimit: { account: ['REQUEST_EMAIL_VERIFICATION_ACCOUNT'] },
    resolve: async (_root, _args, ctx) => {
      await ctx.services.accountRecovery.requestEmailVerification((await claimsOf(ctx)).sub, ctx.request);
      return true;
    },
  }),
  verifyEmail: t.field({
    type: UserRef,
    description: 'Marks an email address verified, with the token from the link of a verification mail.',
    errors: { types: [InvalidTokenError, RateLimitedError], union: { name: 'VerifyEmailResult' } },
    args: { token: t.arg.string({ required: true }) },
    rateLimit: { ip: ['VERIFY_EMAIL_IP'] },
    resolve: (_root, { token }, ctx) => ctx.services.accountRecovery.verifyEmail(token, ctx.request),
  }),
  requestPasswordReset: t.boolean({
    description:
      'Mails a password reset link (valid PASSWORD_RESET_TTL seconds, once) if an active account has this ' +
      'address; a newer link replaces older ones. Always true, at once: the answer never tells whether the ' +
      'address has an account.',
    args: { email: t.arg.string({ required: true }).validate(emailKey) },
    // Counted the same whether or not the address has an account, so the limit reveals nothing.
    rateLimit: {
      ip: ['REQUEST_PASSWORD_RESET_IP'],
      email: { limits: ['REQUEST_PASSWORD_RESET_EMAIL'], of: (args) => args.email },
    },
    resolve: (_root, { email }, ctx) => {
      ctx.services.accountRecovery.requestPasswordReset(email, ctx.request);
      return true;
    },
  }),
  resetPassword: t.field({
    type: AuthPayload,
    description:
      'Sets a new password with the token from the link of a reset mail, marks the email verified, revokes ' +
      'every session and token of the account, and signs in to a new session. When the account has a second ' +
      'factor, the password is set and every session revoked, but the answer is SecondFactorRequired (no ' +
      'tokens): finish with completeSignIn; a mailbox alone never passes or switches off a second factor. A ' +
      'password the policy refuses (InputError on newPassword) leaves the link usable.',
    errors: {
      types: [InvalidTokenError, InputError, RateLimitedError, SecondFactorRequired],
      union: { name: 'ResetPasswordResult' },
    },
    args: {
      token: t.arg.string({ required: true }),
      newPassword: t.arg.string({ required: true, description: NEW_PASSWORD }),
    },
    rateLimit: { ip: ['RESET_PASSWORD_IP'] },
    resolve: async (_root, { token, newPassword }, ctx) =>
      ctx.refreshCookie.deliver(await ctx.services.accountRecovery.resetPassword(token, newPassword, ctx.request)),
  }),
}));
