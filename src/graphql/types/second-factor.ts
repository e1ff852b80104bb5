import type { Account } from '../../accounts/accounts.js';
import type { TotpEnrollmentAnswer } from '../../credentials/second-factors.js';
import { MAX_PENDING_TOTP_GUESSES, PENDING_TOTP_TTL_SECONDS } from '../../credentials/totp.js';
import { InputError, InvalidSecondFactorError, RateLimitedError } from '../../errors.js';
import { describeErrors, withTypedErrors } from '../access-errors.js';
import { changeAsViewer, claimsOf } from '../viewer-claims.js';
import { builder } from '../builder.js';
import { guarded } from '../policy.js';
import { UserRef } from './user.js';

export const SecondFactorMethodEnum = builder.enumType('SecondFactorMethod', {
  description: 'A second factor a user can pass at sign-in or reauthenticate.',
  values: {
    TOTP: { description: 'A 6-digit code of an authenticator app (RFC 6238: SHA-1, 30 s).' },
    RECOVERY_CODE: { description: 'One of the single-use recovery codes handed out when TOTP was confirmed.' },
    PASSKEY: { description: 'A WebAuthn passkey (see User.passkeys).' },
  },
});

const TotpEnrollmentRef = builder.objectRef<TotpEnrollmentAnswer>('TotpEnrollment').implement({
  description: 'A new authenticator-app secret, pending until confirmTotp receives a code of it.',
  fields: (t) => ({
    secret: t.exposeString('secret', { description: 'The secret in base32, for typing into an app by hand.' }),
    otpauthUri: t.exposeString('otpauthUri', { description: 'The `otpauth://totp/...` URI apps read from a QR code.' }),
    qrCodeSvg: t.exposeString('qrCodeSvg', { description: 'The URI as a QR code, an SVG document.' }),
  }),
});

const RecoveryCodesRef = builder.objectRef<{ codes: string[] }>('RecoveryCodes').implement({
  description: 'Ten single-use recovery codes, shown this once (only their hashes are stored). Any older set stops working.',
  fields: (t) => ({ codes: t.exposeStringList('codes') }),
});

/** Said by every field that changes a factor (issue 14: changing factors revokes the other sessions). */
export const FACTOR_CHANGE = 'Your other sessions are signed out.';

/**
 * Why taking a factor away (or renewing the codes that stand in for it) needs a session that has
 * passed one: a session opened with the password alone (the one that enrolled the factor, say)
 * must prove the factor first, so a password and a session are never enough to switch it off.
 */
/**
 * Why adding a factor (or replacing the app's secret) needs, once the user has one, a session that
 * passed it: otherwise a password-only session could put the attacker's app or passkey in.
 */
export const ADD_FACTOR =
  'Once you have a second factor, adding or replacing one needs a session that passed it (SECOND_FACTOR_REQUIRED ' +
  'otherwise: `reauthenticate` with a code or a passkey first).';

/** Said by the fields that start adding a factor: an address nobody proved may be a pre-hijacker's. */
export const NEEDS_VERIFIED_ADDRESS =
  'Needs a verified email address: a factor added to an account whose address nobody has proven could be a ' +
  `pre-hijacker's, holding the address's owner out after their password reset.\n\n${describeErrors(['EMAIL_NOT_VERIFIED'])}`;

export const PROVE_FACTOR =
  'A session that has not passed a second factor (say, the one that enrolled it) gets SECOND_FACTOR_REQUIRED: ' +
  '`reauthenticate` with a code or a passkey first.';

builder.mutationFields((t) => ({
  enrollTotp: t.field({
    type: TotpEnrollmentRef,
    ...guarded(
      { authenticated: true, recentAuth: true, secondFactor: 'once-enrolled' },
      'Starts turning on an authenticator app: a new secret, not active until confirmTotp receives a code of it. ' +
        'Enrolling again replaces a pending secret; a confirmed one keeps working until the new one is confirmed. ' +
        `${ADD_FACTOR} ${NEEDS_VERIFIED_ADDRESS}`,
    ),
    rateLimit: { account: ['FACTOR_CHANGE_ACCOUNT'] },
    resolve: async (_root, _args, ctx) => withTypedErrors(async () => ctx.services.secondFactors.enrollTotp(await claimsOf(ctx))),
  }),
  confirmTotp: t.field({
    type: RecoveryCodesRef,
    errors: { types: [InvalidSecondFactorError, InputError, RateLimitedError], union: { name: 'ConfirmTotpResult' } },
    args: { code: t.arg.string({ required: true, description: 'A current code of the app, from the enrolled secret.' }) },
    ...guarded(
      { authenticated: true, secondFactor: 'once-enrolled' },
      'Turns on the authenticator app enrolled with enrollTotp, with a current code of it, and answers the ' +
        'recovery codes (shown once). InvalidSecondFactorError: wrong code, or nothing enrolled, or the pending ' +
        `secret is dead: enrolled over ${PENDING_TOTP_TTL_SECONDS / 60} minutes ago, or given ${MAX_PENDING_TOTP_GUESSES} ` +
        `codes already (then even the right code is refused: enrollTotp again). ${FACTOR_CHANGE} ` +
        ADD_FACTOR,
    ),
    rateLimit: { ip: ['SECOND_FACTOR_IP'] },
    resolve: async (_root, { code }, ctx) => changeAsViewer(ctx, (claims) => ctx.services.secondFactors.confirmTotp(claims, code, ctx.request)),
  }),
  disableTotp: t.boolean({
    ...guarded(
      { authenticated: true, recentAuth: true, secondFactor: true },
      `Turns the authenticator app off, and with it the recovery codes. False when it was off. ${FACTOR_CHANGE} ` +
        `${PROVE_FACTOR}`,
    ),
    rateLimit: { account: ['FACTOR_CHANGE_ACCOUNT'] },
    resolve: async (_root, _args, ctx) => changeAsViewer(ctx, (claims) => ctx.services.secondFactors.disableTotp(claims, ctx.request)),
  }),
  regenerateRecoveryCodes: t.field({
    type: RecoveryCodesRef,
    ...guarded(
      { authenticated: true, recentAuth: true, secondFactor: true },
      `A new set of recovery codes; the old set stops working. ${FACTOR_CHANGE} ${PROVE_FACTOR}\n\n` +
        describeErrors(['NO_SECOND_FACTOR']),
    ),
    rateLimit: { account: ['FACTOR_CHANGE_ACCOUNT'] },
    resolve: async (_root, _args, ctx) =>
      withTypedErrors(() => changeAsViewer(ctx, (claims) => ctx.services.secondFactors.regenerateRecoveryCodes(claims, ctx.request))),
  }),
}));

builder.objectField(UserRef, 'secondFactors', (t) =>
  t.field({
    type: [SecondFactorMethodEnum],
    ...guarded({ self: (user: Account) => user.id }, 'The second factors the user can pass (empty: password only).'),
    resolve: (user, _args, ctx) => ctx.services.secondFactors.methodsOf(user.id),
  }),
);
