import type { Account } from '../../accounts/accounts.js';
import type { IdentityRow } from '../../db/schema.js';
import {
  AccountDisabledError,
  AccountExistsError,
  InputError,
  RateLimitedError,
  SocialSignInError,
} from '../../errors.js';
import { SecondFactorRequired } from '../../credentials/sign-in-challenges.js';
import type { SocialSignInStart } from '../../social/social-sign-in.js';
import { describeErrors, withTypedErrors } from '../access-errors.js';
import { changeAsViewer, claimsOf } from '../viewer-claims.js';
import { rowId } from '../arguments.js';
import { builder } from '../builder.js';
import { guarded } from '../policy.js';
import { AuthPayload } from './auth.js';
import { UserRef } from './user.js';

const SocialProviderRef = builder.objectRef<{ id: string; name: string }>('SocialProvider').implement({
  description: 'A provider users can sign in with (SOCIAL_PROVIDERS).',
  fields: (t) => ({
    id: t.exposeString('id', { description: 'What startSocialSignIn and completeSocialSignIn take as `provider`.' }),
    name: t.exposeString('name', { description: 'A name to show on the button (SOCIAL_<ID>_NAME).' }),
  }),
});

const SocialSignInStartRef = builder.objectRef<SocialSignInStart>('SocialSignInStart').implement({
  description:
    'Send the user to `authorizationUrl`. The provider sends them back to the redirect URI with `code`, `state` ' +
    'and often `iss`: pass all of them to completeSocialSignIn (or completeIdentityLink). The state is single-use ' +
    'and expires after SOCIAL_STATE_TTL seconds.',
  fields: (t) => ({
    authorizationUrl: t.exposeString('authorizationUrl'),
    state: t.exposeString('state', { description: 'Also in authorizationUrl; the redirect back carries it.' }),
  }),
});

export const IdentityRef = builder.objectRef<IdentityRow>('Identity').implement({
  description: 'A provider account linked to a user: signing in with it signs in as that user.',
  fields: (t) => ({
    id: t.exposeID('id'),
    provider: t.exposeString('provider'),
    subject: t.exposeString('subject', { description: "The provider's stable id of its user." }),
    email: t.exposeString('email', { nullable: true, description: 'The email the provider gave when it was linked.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.objectField(UserRef, 'identities', (t) =>
  t.field({
    type: [IdentityRef],
    ...guarded({ self: (user: Account) => user.id, permission: 'users:read' }, 'Linked sign-in providers, oldest first.'),
    resolve: (user, _args, ctx) => ctx.services.socialSignIn.identitiesOf(user.id),
  }),
);

/**
 * startSocialSignIn and startIdentityLink answer one union, StartSocialSignInResult (a name the
 * contract fixes). The errors plugin makes a union per field, keyed by the field's result name:
 * the same key (and the same members) on both fields hands the second field the first one's union.
 */
const START_RESULT = {
  types: [InputError, SocialSignInError, RateLimitedError],
  union: { name: 'StartSocialSignInResult' },
  result: { name: 'StartSocialSignInResult' },
};

/** What the provider's redirect carried, as completeSocialSignIn and completeIdentityLink take it. */
const PROVIDER_CALLBACK_ARGS = builder.args((t) => ({
  provider: t.string({ required: true }),
  code: t.string({ required: true }),
  state: t.string({ required: true }),
  iss: t.string(),
}));

builder.queryFields((t) => ({
  socialProviders: t.field({
    type: [SocialProviderRef],
    description: 'The providers users can sign in with, in SOCIAL_PROVIDERS order.',
    resolve: (_root, _args, ctx) => ctx.services.socialSignIn.providers(),
  }),
}));

builder.mutationFields((t) => ({
  startSocialSignIn: t.field({
    type: SocialSignInStartRef,
    description:
      'Starts signing in with a provider: where to send the user (authorization code with PKCE, state and nonce). ' +
      '`redirectUri` must be one of SOCIAL_REDIRECT_URIS exactly (InputError on redirectUri otherwise); an unknown ' +
      'provider is InputError on provider; a provider that cannot be reached is SocialSignInError.',
    errors: START_RESULT,
    args: { provider: t.arg.string({ required: true }), redirectUri: t.arg.string({ required: true }) },
    rateLimit: { ip: ['SOCIAL_SIGN_IN_IP'] },
    resolve: (_root, args, ctx) => ctx.services.socialSignIn.startSignIn(args.provider, args.redirectUri),
  }),
  completeSocialSignIn: t.field({
    type: AuthPayload,
    description:
      "Completes a sign-in with what the provider's redirect carried (`iss` when it had one: it must be the " +
      "provider's issuer). A linked identity signs its user in, or, when the user has a second factor, answers " +
      'SecondFactorRequired (no tokens): finish with completeSignIn, whose session then has amr `fed`, `otp`. ' +
      'A new identity whose email no account has creates one. One whose email an account already has is AccountExistsError: it is never linked on its own, sign in ' +
      'and use startIdentityLink. A wrong, spent, expired or other-provider state, a bad code or ID token is ' +
      'SocialSignInError and creates nothing.',
    errors: {
      types: [AccountExistsError, AccountDisabledError, SocialSignInError, InputError, RateLimitedError, SecondFactorRequired],
      union: { name: 'CompleteSocialSignInResult' },
    },
    args: PROVIDER_CALLBACK_ARGS,
    rateLimit: { ip: ['SOCIAL_SIGN_IN_IP'] },
    resolve: async (_root, args, ctx) =>
      ctx.refreshCookie.deliver(await ctx.services.socialSignIn.completeSignIn(args, ctx.request)),
  }),
  startIdentityLink: t.field({
    type: SocialSignInStartRef,
    errors: START_RESULT,
    args: { provider: t.arg.string({ required: true }), redirectUri: t.arg.string({ required: true }) },
    rateLimit: { ip: ['SOCIAL_SIGN_IN_IP'] },
    ...guarded(
      { authenticated: true, recentAuth: true },
      'Starts linking a provider to your account, as startSocialSignIn does; complete it with completeIdentityLink. ' +
        'A linked provider is a way in that outlives sessions and password changes, so a stolen token must not be ' +
        'enough to add one: it needs a recent sign-in (`reauthenticate` renews it).',
    ),
    resolve: async (_root, args, ctx) => {
      const { sub } = await claimsOf(ctx);
      return ctx.services.socialSignIn.startLink(args.provider, args.redirectUri, sub);
    },
  }),
  completeIdentityLink: t.field({
    type: IdentityRef,
    errors: {
      types: [SocialSignInError, AccountExistsError, InputError, RateLimitedError],
      union: { name: 'LinkIdentityResult' },
    },
    args: PROVIDER_CALLBACK_ARGS,
    rateLimit: { ip: ['SOCIAL_SIGN_IN_IP'] },
    ...guarded(
      { authenticated: true },
      'Links the identity the provider sent you back with to your account (the state must be of a link you ' +
        'started). Already linked to you: answered as it is. Linked to another account: AccountExistsError.',
    ),
    resolve: async (_root, args, ctx) =>
      changeAsViewer(ctx, (claims) => ctx.services.socialSignIn.completeLink(args, claims, ctx.request)),
  }),
  unlinkIdentity: t.boolean({
    args: { id: t.arg.id({ required: true }).validate(rowId) },
    ...guarded(
      { authenticated: true, recentAuth: true },
      'Unlinks one of your identities. True when it was unlinked; false when you have none with this id. ' +
        'Refused when it is your last way to sign in. Your other sessions are signed out (one opened through ' +
        `the identity must not outlive it).\n\n${describeErrors(['LAST_SIGN_IN_METHOD'])}`,
    ),
    resolve: async (_root, { id }, ctx) => {
      return withTypedErrors(() => changeAsViewer(ctx, (claims) => ctx.services.socialSignIn.unlink(claims, id ?? null, ctx.request)));
    },
  }),
}));
