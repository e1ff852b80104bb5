import type { Reauthenticated } from '../../credentials/reauthentication.js';
import { InputError, InvalidCredentialsError, InvalidSecondFactorError, RateLimitedError } from '../../errors.js';
import { unauthenticatedError } from '../access-errors.js';
import { builder } from '../builder.js';
import { guarded } from '../policy.js';

const ReauthenticatedRef = builder.objectRef<Reauthenticated>('Reauthentication').implement({
  description:
    'A new access token for the same session, carrying the new `auth_time` (and `amr`). The refresh token is ' +
    'unchanged: later refreshes carry the new auth_time too.',
  fields: (t) => ({
    accessToken: t.exposeString('accessToken', { description: 'A short-lived JWT (typ at+jwt): use it from now on.' }),
    tokenType: t.string({ resolve: () => 'Bearer' }),
    expiresIn: t.exposeInt('expiresIn', { description: 'Seconds until the access token expires.' }),
    accessTokenExpiresAt: t.expose('accessTokenExpiresAt', { type: 'DateTime', description: "The access token's `exp`." }),
    authTime: t.expose('authTime', { type: 'DateTime', description: 'The `auth_time` of the session from now on: this instant.' }),
    amr: t.exposeStringList('amr', { description: 'How the session has been authenticated (RFC 8176 values, e.g. `pwd`, `otp`).' }),
  }),
});

builder.mutationFields((t) => ({
  reauthenticate: t.field({
    type: ReauthenticatedRef,
    errors: {
      types: [InvalidCredentialsError, InvalidSecondFactorError, InputError, RateLimitedError],
      union: { name: 'ReauthenticateResult' },
    },
    args: {
      password: t.arg.string({ description: 'Your password.' }),
      code: t.arg.string({ description: 'A code of your authenticator app, or a recovery code.' }),
      passkey: t.arg({ type: 'JSON', description: 'A passkey assertion to the options of startPasskeyReauthentication.' }),
    },
    ...guarded(
      { authenticated: true },
      'Proves again that you are you, with exactly one of `password`, `code` (which also gives the session its ' +
        'second factor) or `passkey` (which does too with user verification: amr `hwk`, `user`), for fields that need a recent sign-in (REAUTHENTICATION_REQUIRED) or a ' +
        'second factor (SECOND_FACTOR_REQUIRED). Answers a new access token. A wrong password ' +
        '(InvalidCredentialsError) or code (InvalidSecondFactorError) counts toward the account lockout like a ' +
        'wrong sign-in (RateLimitedError while locked); so does a passkey assertion that does not verify ' +
        '(InvalidSecondFactorError). A session may give 5 wrong codes or passkey assertions until one passes, ' +
        'whatever RATE_LIMITS says; later ones are refused unchecked (InvalidSecondFactorError). InputError: not ' +
        'exactly one proof given.',
    ),
    // Per account, the lockout counts wrong passwords and codes (RATE_LIMIT_LOGIN_ACCOUNT).
    rateLimit: { ip: ['SECOND_FACTOR_IP'] },
    resolve: async (_root, args, ctx) => {
      const viewer = await ctx.viewer();
      if (viewer.kind !== 'user') throw unauthenticatedError(viewer);
      return ctx.services.reauthentication.reauthenticate(viewer.claims, args, ctx.request);
    },
  }),
}));
