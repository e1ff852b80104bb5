import type { Account } from '../../accounts/accounts.js';
import type { PasskeyRow } from '../../credentials/passkeys.js';
import { MAX_PASSKEY_NAME_LENGTH } from '../../credentials/passkey-registration.js';
import { InputError, InvalidCredentialsError, RateLimitedError } from '../../errors.js';
import { describeErrors, withTypedErrors } from '../access-errors.js';
import { rowId, signInEmail } from '../arguments.js';
import { builder } from '../builder.js';
import { guarded } from '../policy.js';
import { ADD_FACTOR, FACTOR_CHANGE, NEEDS_VERIFIED_ADDRESS, PROVE_FACTOR } from './second-factor.js';
import { changeAsViewer, claimsOf } from '../viewer-claims.js';
import { UserRef } from './user.js';
import { AuthPayload } from './auth.js';

export const PasskeyRef = builder.objectRef<PasskeyRow>('Passkey').implement({
  description: 'A WebAuthn credential (passkey) of the user: it signs in without a password, and passes the second factor.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name', { nullable: true, description: 'The name given at registration.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true, description: 'When it last signed in or passed a second factor.' }),
  }),
});

/** A passkey's name: trimmed, at most MAX_PASSKEY_NAME_LENGTH characters; blank is none. */
function passkeyName(raw: string | null | undefined): string | null {
  const name = raw?.trim() ?? '';
  if ([...name].length > MAX_PASSKEY_NAME_LENGTH) throw new InputError('name', `Names have at most ${MAX_PASSKEY_NAME_LENGTH} characters.`);
  return name === '' ? null : name;
}

builder.mutationFields((t) => ({
  startPasskeyRegistration: t.field({
    type: 'JSON',
    ...guarded(
      { authenticated: true, recentAuth: true, secondFactor: 'once-enrolled' },
      'Starts adding a passkey: WebAuthn creation options (PublicKeyCredentialCreationOptionsJSON) for ' +
        '`startRegistration` of @simplewebauthn/browser. A discoverable credential, user verification required; ' +
        `your existing passkeys are excluded. Finish within 5 minutes with finishPasskeyRegistration. ${ADD_FACTOR} ` +
        NEEDS_VERIFIED_ADDRESS,
    ),
    rateLimit: { account: ['FACTOR_CHANGE_ACCOUNT'] },
    resolve: async (_root, _args, ctx) => withTypedErrors(async () => ctx.services.passkeyRegistration.startRegistration(await claimsOf(ctx))),
  }),
  finishPasskeyRegistration: t.field({
    type: PasskeyRef,
    errors: { types: [InputError, RateLimitedError], union: { name: 'FinishPasskeyRegistrationResult' } },
    args: {
      response: t.arg({ type: 'JSON', required: true, description: 'What `startRegistration` of @simplewebauthn/browser resolved to.' }),
      name: t.arg.string({ description: `A name for the passkey (at most ${MAX_PASSKEY_NAME_LENGTH} characters).` }),
    },
    ...guarded(
      { authenticated: true, secondFactor: 'once-enrolled' },
      'Stores the passkey created with the options of startPasskeyRegistration. InputError (field `response`): ' +
        'it does not verify (origin, RP ID, challenge, user verification, signature), its challenge is spent or ' +
        `expired, or it is registered already. ${FACTOR_CHANGE} ${ADD_FACTOR}`,
    ),
    rateLimit: { account: ['FACTOR_CHANGE_ACCOUNT'] },
    resolve: async (_root, { response, name }, ctx) =>
      changeAsViewer(ctx, (claims) => ctx.services.passkeyRegistration.finishRegistration(claims, response, passkeyName(name), ctx.request)),
  }),
  removePasskey: t.boolean({
    args: { id: t.arg.id({ required: true }).validate(rowId) },
    ...guarded(
      { authenticated: true, recentAuth: true, secondFactor: true },
      `Removes one of your passkeys; false when you have none of that id. Refused when it is your last way to sign ` +
        `in (no password, no linked identity, no other passkey). ${FACTOR_CHANGE} ${PROVE_FACTOR}\n\n` +
        describeErrors(['LAST_SIGN_IN_METHOD']),
    ),
    rateLimit: { account: ['FACTOR_CHANGE_ACCOUNT'] },
    resolve: async (_root, { id }, ctx) =>
      id ? withTypedErrors(() => changeAsViewer(ctx, (claims) => ctx.services.passkeyRegistration.removePasskey(claims, id, ctx.request))) : false,
  }),
}));

builder.mutationFields((t) => ({
  startPasskeySignIn: t.field({
    type: 'JSON',
    args: { email: t.arg.string({ description: 'Optional: offer only this account\'s passkeys.' }).validate(signInEmail.nullish()) },
    description:
      'Starts a passwordless sign-in: WebAuthn request options (PublicKeyCredentialRequestOptionsJSON) for ' +
      '`startAuthentication` of @simplewebauthn/browser. Without `email`, discoverable: the browser offers every ' +
      "passkey it holds for this site. With `email`, allowCredentials lists that account's passkeys; an email " +
      'without passkeys (or without an account) gets a made-up id that is stable per email, so the answer does ' +
      'not tell whether the account exists. User verification required (biometrics or the authenticator\'s PIN). ' +
      'Finish within 5 minutes with finishPasskeySignIn.',
    rateLimit: { ip: ['LOGIN_IP'] },
    resolve: (_root, { email }, ctx) => ctx.services.passkeySignIn.startSignIn(email ?? null),
  }),
  finishPasskeySignIn: t.field({
    type: AuthPayload,
    errors: { types: [InvalidCredentialsError, RateLimitedError], union: { name: 'PasskeySignInResult' } },
    args: { response: t.arg({ type: 'JSON', required: true, description: 'What `startAuthentication` of @simplewebauthn/browser resolved to.' }) },
    description:
      'Signs in with a passkey, opening a new session: amr `hwk`, `user` (two factors: the authenticator must have ' +
      'verified the user). InvalidCredentialsError for any refusal: no user verification, an unknown or removed ' +
      'passkey, another origin, RP ID or challenge (each works once), a bad signature, a counter that went ' +
      'backwards, a disabled account. In cookie mode it sets the refresh cookie like login.',
    rateLimit: { ip: ['LOGIN_IP'] },
    resolve: async (_root, { response }, ctx) => ctx.refreshCookie.deliver(await ctx.services.passkeySignIn.finishSignIn(response, ctx.request)),
  }),
}));

builder.mutationFields((t) => ({
  startPasskeyReauthentication: t.field({
    type: 'JSON',
    nullable: true,
    ...guarded(
      { authenticated: true },
      "WebAuthn request options for your passkeys, for reauthenticate's `passkey` (pass it what " +
        '`startAuthentication` of @simplewebauthn/browser resolved to, within 5 minutes). Null when you have no passkey.',
    ),
    rateLimit: { ip: ['SECOND_FACTOR_IP'] },
    resolve: async (_root, _args, ctx) => ctx.services.passkeySignIn.reauthenticationOptions((await claimsOf(ctx)).sub),
  }),
}));

builder.objectField(UserRef, 'passkeys', (t) =>
  t.field({
    type: [PasskeyRef],
    ...guarded({ self: (user: Account) => user.id }, "The user's passkeys, oldest first."),
    resolve: (user, _args, ctx) => ctx.services.passkeyRegistration.passkeysOf(user.id),
  }),
);
