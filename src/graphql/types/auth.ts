import type { AuthTokens } from '../../sessions/session-service.js';
import { SecondFactorRequired } from '../../credentials/sign-in-challenges.js';
import {
  AccountDisabledError,
  EmailNotVerifiedError,
  EmailTakenError,
  InputError,
  InvalidCredentialsError,
  InvalidRefreshTokenError,
  InvalidSecondFactorError,
  RateLimitedError,
} from '../../errors.js';
import { unauthenticatedError, unauthenticatedReason } from '../access-errors.js';
import { accountEmail, accountName, signInEmail, signInPassword } from '../arguments.js';
import { builder } from '../builder.js';
import { SecondFactorMethodEnum } from './second-factor.js';
import { UserRef } from './user.js';

export const AuthPayload = builder.objectRef<AuthTokens>('AuthPayload').implement({
  description: 'Tokens for a session. Send the access token as `Authorization: Bearer <accessToken>`.',
  fields: (t) => ({
    accessToken: t.exposeString('accessToken', { description: 'A short-lived JWT (typ at+jwt).' }),
    refreshToken: t.string({
      nullable: true,
      description:
        'Opaque and single-use: `refresh` spends it and returns its successor. Null when REFRESH_TOKEN_TRANSPORT ' +
        'is `cookie`: the token is then only in the HttpOnly refresh cookie.',
      resolve: (payload, _args, ctx) => (ctx.refreshCookie.inBody ? payload.refreshToken : null),
    }),
    tokenType: t.string({ resolve: () => 'Bearer' }),
    expiresIn: t.exposeInt('expiresIn', { description: 'Seconds until the access token expires.' }),
    refreshExpiresIn: t.exposeInt('refreshExpiresIn', { description: 'Seconds until the refresh token expires.' }),
    accessTokenExpiresAt: t.expose('accessTokenExpiresAt', {
      type: 'DateTime',
      description: "When the access token expires: its `exp` claim (whole seconds). Refresh before, or on EXPIRED.",
    }),
    refreshTokenExpiresAt: t.expose('refreshTokenExpiresAt', {
      type: 'DateTime',
      description: "When the refresh token expires: REFRESH_TOKEN_TTL after it was issued, or the session's end if sooner.",
    }),
    user: t.field({
      type: UserRef,
      resolve: (payload, _args, ctx) => {
        ctx.signedInDuringRequest.add(payload.user.id);
        return payload.user;
      },
    }),
  }),
});

builder.objectType(SecondFactorRequired, {
  name: 'SecondFactorRequired',
  description:
    'The first factor passed (the password, or a sign-in through a provider) and the account has a second ' +
    'factor: no tokens yet. Call completeSignIn with the ' +
    'challenge and a code of one of `methods` within `expiresIn` seconds. The challenge works once and dies after 5 ' +
    'wrong codes (sign in again then).',
  isTypeOf: (value) => value instanceof SecondFactorRequired,
  fields: (t) => ({
    challenge: t.exposeString('challenge', { description: 'Opaque and single-use: pass it to completeSignIn.' }),
    methods: t.field({ type: [SecondFactorMethodEnum], resolve: (answer) => answer.methods, description: 'The factors that can finish the sign-in.' }),
    expiresIn: t.exposeInt('expiresIn', { description: 'Seconds until the challenge expires (300).' }),
    passkeyOptions: t.field({
      type: 'JSON',
      nullable: true,
      description:
        "WebAuthn request options (PublicKeyCredentialRequestOptionsJSON) for the user's passkeys, for " +
        '`startAuthentication` of @simplewebauthn/browser; pass its answer to completeSignIn as `passkey`. Null when ' +
        'the user has no passkey. Each read issues new options (their challenge works once, for this sign-in only).',
      resolve: (answer, _args, ctx) => ctx.services.passkeySignIn.secondFactorOptions(answer.challenge),
    }),
  }),
});

const RegisterInput = builder.inputType('RegisterInput', {
  fields: (t) => ({
    email: t.string({ required: true, validate: accountEmail }),
    password: t.string({ required: true, description: '8 to 256 characters, not a common password.' }),
    name: t.string({ required: false, validate: accountName }),
  }),
});

const LoginInput = builder.inputType('LoginInput', {
  fields: (t) => ({
    email: t.string({ required: true, validate: signInEmail }),
    password: t.string({ required: true, validate: signInPassword }),
  }),
});

builder.mutationFields((t) => ({
  register: t.field({
    type: AuthPayload,
    description: 'Creates an account (role `user`) and signs it in.',
    errors: { types: [InputError, EmailTakenError, RateLimitedError], union: { name: 'RegisterResult' } },
    args: { input: t.arg({ type: RegisterInput, required: true }) },
    rateLimit: { ip: ['REGISTER_IP'] },
    resolve: async (_root, { input }, ctx) => ctx.refreshCookie.deliver(await ctx.services.registration.register(input, ctx.request)),
  }),
  login: t.field({
    type: AuthPayload,
    description:
      'Signs in with email and password, opening a new session. When the account has a second factor, a right ' +
      'password answers SecondFactorRequired (no tokens): finish with completeSignIn. Failed sign-ins per email ' +
      'are capped by the account lockout (`RATE_LIMIT_LOGIN_ACCOUNT`, `LOCKOUT_BASE`, `LOCKOUT_MAX`): ' +
      'RateLimitedError, and no password is checked, while the email is locked.',
    errors: {
      types: [InvalidCredentialsError, AccountDisabledError, EmailNotVerifiedError, InputError, RateLimitedError, SecondFactorRequired],
      union: { name: 'LoginResult' },
    },
    args: { input: t.arg({ type: LoginInput, required: true }) },
    // Per email, the sign-in itself counts failures (the lockout: RATE_LIMIT_LOGIN_ACCOUNT).
    rateLimit: { ip: ['LOGIN_IP'] },
    resolve: async (_root, { input }, ctx) => ctx.refreshCookie.deliver(await ctx.services.signIn.login(input, ctx.request)),
  }),
  completeSignIn: t.field({
    type: AuthPayload,
    description:
      'Finishes a sign-in (login, resetPassword or completeSocialSignIn) that answered SecondFactorRequired, with ' +
      'exactly one of `code` (a code of the authenticator app or a recovery code) or `passkey` (an assertion to ' +
      'SecondFactorRequired.passkeyOptions), opening a session that passed two factors (amr `pwd`, `otp` after a ' +
      'password and a code, `pwd`, `hwk` (+`user` with user verification) after a password and a passkey; `fed` ' +
      'first after a provider). InvalidSecondFactorError: a wrong or used code, a passkey assertion that does not ' +
      'verify (another origin, RP ID or challenge, a bad signature, a counter gone backwards), or a challenge that is unknown, expired, ' +
      'spent, dead after 5 wrong codes, or whose first step no longer holds (the password changed, the provider ' +
      'identity was unlinked). Wrong codes and passkey assertions count toward the ' +
      'account lockout like wrong passwords (RateLimitedError while locked). AccountDisabledError: the account was ' +
      "disabled after the first step (nothing is spent). In cookie mode it sets the refresh cookie like login.",
    errors: {
      types: [InvalidSecondFactorError, AccountDisabledError, InputError, RateLimitedError],
      union: { name: 'CompleteSignInResult' },
    },
    args: {
      challenge: t.arg.string({ required: true, description: 'From SecondFactorRequired.' }),
      code: t.arg.string(),
      passkey: t.arg({ type: 'JSON' }),
    },
    rateLimit: { ip: ['SECOND_FACTOR_IP'] },
    resolve: async (_root, args, ctx) =>
      ctx.refreshCookie.deliver(await ctx.services.signIn.completeSignIn(args, ctx.request)),
  }),
  refresh: t.field({
    type: AuthPayload,
    description:
      'Spends a refresh token and returns new tokens for the same session. A retry within the ' +
      'grace period gets the same successor; any later reuse revokes the session. Without `refreshToken`, ' +
      'the refresh cookie is spent (REFRESH_TOKEN_TRANSPORT cookie or both); the argument wins over the cookie.',
    errors: { types: [InvalidRefreshTokenError, RateLimitedError], union: { name: 'RefreshResult' } },
    args: { refreshToken: t.arg.string() },
    rateLimit: { ip: ['REFRESH_IP'] },
    // A rotation announces nothing (refresh tokens and last use are held by no instance); a
    // replay revokes the session, and failures still settle.
    settles: 'onFailure',
    resolve: (_root, { refreshToken }, ctx) =>
      ctx.refreshCookie.refresh(refreshToken, (token) => ctx.services.auth.refresh(token, ctx.request)),
  }),
  logout: t.boolean({
    description:
      'Revokes the current access token and its session, and the session of `refreshToken` if given. ' +
      'An expired access token of this server (its signature valid) still revokes the session it was ' +
      'issued in, if that session is live, and nothing else. `everywhere: true` revokes every session of ' +
      'the user: it needs a valid access token, or an expired one together with a live refresh token of ' +
      'the same user (else UNAUTHENTICATED with the access token\'s reason, revoking nothing). Idempotent: ' +
      'true also when the tokens given are already expired or revoked (a refresh token the server does ' +
      'not know counts as dead). UNAUTHENTICATED, revoking nothing, when no token is given (MISSING), and ' +
      'when no token given is live and the access token is not one of ours (MALFORMED). Without ' +
      '`refreshToken`, the refresh cookie counts as given (REFRESH_TOKEN_TRANSPORT cookie or both), and ' +
      'logout clears it, unless it belongs to another session that is still live.',
    args: {
      refreshToken: t.arg.string(),
      everywhere: t.arg.boolean({ defaultValue: false }),
    },
    resolve: async (_root, args, ctx) => {
      const viewer = await ctx.viewer();
      // An expired token of ours still proves which session it was issued in (the service
      // decides how far that proof reaches).
      const access =
        viewer.kind === 'user' || (viewer.kind === 'refused' && viewer.reason === 'expired')
          ? { claims: viewer.claims, expired: viewer.kind !== 'user' }
          : null;
      const refreshToken = ctx.refreshCookie.tokenFrom(args.refreshToken);
      const outcome = await ctx.services.auth.logout({
        access,
        refreshToken,
        everywhere: args.everywhere ?? false,
        request: ctx.request,
      });
      // Only a token of ours proves whose sessions "everywhere" are; anything less would answer
      // true while other sessions live on.
      if (outcome === 'everywhere_unproven') throw unauthenticatedError(viewer);
      // The cookie goes with its session: revoked just now, or dead already.
      await ctx.refreshCookie.release();
      if (outcome === 'revoked') return true;
      // Nothing was live. Dead tokens (expired, revoked) make a retried or late logout succeed, so
      // clients never refresh just to sign out. An unknown refresh token counts as dead: it may
      // have been purged after expiry, and telling "unknown" from "wrong secret" would tell a
      // guesser which ids exist. No token at all, or an access token that is not ours, is a
      // client's mistake and stays UNAUTHENTICATED.
      const nothingGiven = viewer.kind === 'anonymous' && !refreshToken;
      if (viewer.kind !== 'user' && (nothingGiven || unauthenticatedReason(viewer) === 'MALFORMED')) {
        throw unauthenticatedError(viewer);
      }
      return true;
    },
  }),
}));
