import { createHmac } from 'node:crypto';
import { isoBase64URL } from '@simplewebauthn/server/helpers';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Database } from '../db/client.js';
import { InvalidCredentialsError } from '../errors.js';
import { findUserByEmail, lockUser, recordSignIn } from '../accounts/accounts.js';
import type { AuthService, AuthTokens } from '../sessions/session-service.js';
import { startSession, type SessionPolicy } from '../sessions/sessions.js';
import type { RequestInfo } from '../request-info.js';
import { findPasskey, passkeysOf, recordPasskeyUse, type PasskeyRow } from './passkeys.js';
import { challengeOf, credentialIdOf, userHandleIn, userHandleOf, type Webauthn, type WebauthnRefusal } from './webauthn.js';
import { liveChallenge } from './sign-in-challenges.js';
import { saveWebauthnChallenge, takeWebauthnChallenge, type WebauthnPurpose } from './webauthn-challenges.js';

/**
 * The `amr` of a passkey assertion (RFC 8176): `hwk` (a key held), and `user` when the
 * authenticator verified the user (biometrics or its PIN): only then is it two factors.
 */
export const passkeyAmr = (userVerified: boolean) => (userVerified ? ['hwk', 'user'] : ['hwk']);

/** Why an assertion was refused (audited, never told to the client). */
type AssertionRefusal = 'challenge' | 'unknown_passkey' | 'other_user' | 'user_handle' | WebauthnRefusal;

/** Passwordless sign-in with a passkey, and the checking of a passkey assertion for a known user. */
export function createPasskeySignIn(deps: {
  db: Database;
  clock: Clock;
  audit: AuditLog;
  webauthn: Webauthn;
  auth: Pick<AuthService, 'issueTokens'>;
  sessionPolicy: SessionPolicy;
  /** Keys the decoy credential ids of emails without passkeys (a server secret). */
  decoyKey: Buffer;
}) {
  const { db, clock, audit, webauthn, auth, sessionPolicy, decoyKey } = deps;

  /** A stable made-up credential id for an email with no passkey (unknown, or without any). */
  const decoyId = (email: string) => isoBase64URL.fromBuffer(new Uint8Array(createHmac('sha256', decoyKey).update(`passkey decoy:${email}`).digest()));

  /**
   * Takes the challenge an assertion answers (spent whatever follows) and verifies the
   * assertion against the passkey it names; `userId`: the passkey must be this user's.
   */
  async function verify(
    response: unknown,
    purpose: WebauthnPurpose,
    options: { userId?: string; requireUserVerification: boolean; signInChallengeId?: string },
  ): Promise<{ ok: true; passkey: PasskeyRow; counter: number; userVerified: boolean; backedUp: boolean } | { ok: false; reason: AssertionRefusal; userId?: string }> {
    const challenge = challengeOf(response);
    const credentialId = credentialIdOf(response);
    if (!challenge || !credentialId) return { ok: false, reason: 'malformed' };
    const binding = await takeWebauthnChallenge(db, challenge, purpose, clock.now());
    if (!binding) return { ok: false, reason: 'challenge' };
    // A challenge issued to one user never serves another's proof.
    if (options.userId && binding.userId && binding.userId !== options.userId) return { ok: false, reason: 'challenge' };
    const bound = options.userId ?? binding.userId;
    if (options.signInChallengeId !== undefined && binding.signInChallengeId !== options.signInChallengeId) return { ok: false, reason: 'challenge' };
    const passkey = await findPasskey(db, credentialId);
    if (!passkey) return { ok: false, reason: 'unknown_passkey', ...(bound ? { userId: bound } : {}) };
    if (bound && passkey.userId !== bound) {
      return { ok: false, reason: 'other_user', userId: passkey.userId };
    }
    const handle = userHandleIn(response);
    if (handle !== null && handle !== userHandleOf(passkey.userId)) return { ok: false, reason: 'user_handle', userId: passkey.userId };
    const verified = await webauthn.verifyAssertion(response, challenge, passkey, { requireUserVerification: options.requireUserVerification });
    if (!verified.ok) return { ok: false, reason: verified.reason, userId: passkey.userId };
    return { ok: true, passkey, counter: verified.counter, userVerified: verified.userVerified, backedUp: verified.backedUp };
  }

  return {
    /**
     * Request options for a sign-in: discoverable (no allowCredentials) without an email; with
     * one, the ids of that account's passkeys, or, for an email without passkeys or without an
     * account, one decoy id derived from the email under a server key (stable, so asking twice
     * tells nothing either). User verification required: the passkey is the only proof, and a key
     * without it (a security key without a PIN, stolen) is one factor.
     */
    async startSignIn(email: string | null) {
      const user = email ? await findUserByEmail(db, email) : null;
      const owned = user ? (await passkeysOf(db, user.id)).map((passkey) => passkey.credentialId) : [];
      const allow = email === null ? [] : owned.length > 0 ? owned : [decoyId(email)];
      const options = await webauthn.requestOptions(allow, 'required');
      await saveWebauthnChallenge(db, options.challenge, { purpose: 'sign_in', userId: user?.id ?? null }, clock.now());
      return options;
    },

    /**
     * Signs in with an assertion to startSignIn's options: a new session whose amr is
     * ["hwk","user"] (two factors). An assertion without user verification is refused (a key
     * alone is one factor), as is a counter that does not move forward (it may be a cloned
     * authenticator), a removed passkey, an assertion to another challenge, origin or RP ID, and
     * a disabled account: all alike InvalidCredentialsError, the reason in the audit log.
     */
    async finishSignIn(response: unknown, request: RequestInfo): Promise<AuthTokens> {
      const failure = (reason: string, userId?: string) =>
        audit.record({ type: 'login_failure', userId, request, detail: { reason, method: 'passkey' } });
      const checked = await verify(response, 'sign_in', { requireUserVerification: true });
      if (!checked.ok) {
        await failure(`passkey_${checked.reason}`, checked.userId);
        throw new InvalidCredentialsError();
      }
      const { passkey } = checked;
      const now = clock.now();
      const amr = passkeyAmr(checked.userVerified);
      const opened = await db.transaction(async (tx) => {
        const current = await lockUser(tx, passkey.userId);
        if (!current?.active) return 'account_disabled' as const;
        if (!(await recordPasskeyUse(tx, passkey.id, { counter: checked.counter, backedUp: checked.backedUp, now }))) return 'passkey_counter' as const;
        const user = await recordSignIn(tx, passkey.userId, { now });
        const started = await startSession(tx, { userId: user.id, request, now, policy: sessionPolicy, amr });
        await audit.record({ type: 'login_success', userId: user.id, request, detail: { sessionId: started.session.id, method: 'passkey', passkeyId: passkey.id, amr } }, tx);
        return { user, ...started };
      });
      if (typeof opened === 'string') {
        await failure(opened, passkey.userId);
        throw new InvalidCredentialsError();
      }
      return auth.issueTokens(opened.user, opened.session, opened.refreshToken, now);
    },

    /**
     * Checks a passkey assertion of `userId` (the second step of a sign-in: it must answer
     * options issued for `signInChallengeId`; else a re-authentication), user verification not
     * required (a key without a PIN is a fine second factor: amr ["hwk"]), and records its use. The amr values it earns, or null: audited, every failure.
     */
    async checkAssertion(userId: string, response: unknown, request: RequestInfo, signInChallengeId?: string): Promise<{ amr: string[] } | null> {
      const purpose = signInChallengeId === undefined ? 'reauthentication' : 'second_factor';
      const checked = await verify(response, purpose, { userId, requireUserVerification: false, ...(signInChallengeId ? { signInChallengeId } : {}) });
      const recorded =
        checked.ok && (await recordPasskeyUse(db, checked.passkey.id, { counter: checked.counter, backedUp: checked.backedUp, now: clock.now() }));
      if (checked.ok && recorded) return { amr: passkeyAmr(checked.userVerified) };
      const reason = checked.ok ? 'counter' : checked.reason;
      const use = purpose === 'second_factor' ? 'sign_in' : 'reauthenticate';
      await audit.record({ type: 'second_factor_failure', userId, request, detail: { use, method: 'PASSKEY', reason } });
      return null;
    },

    /**
     * Request options for the passkeys of the user of a live sign-in challenge, bound to that
     * challenge (null when the user has none, or the challenge is not live).
     */
    async secondFactorOptions(signInChallenge: string) {
      const live = await liveChallenge(db, signInChallenge, clock.now());
      return live ? optionsFor(live.userId, { purpose: 'second_factor', signInChallengeId: live.id }) : null;
    },

    /** Request options for a signed-in user's passkeys, to reauthenticate with (null when they have none). */
    reauthenticationOptions: (userId: string) => optionsFor(userId, { purpose: 'reauthentication' }),
  };

  /** Request options for a known user's passkeys (null when they have none), the challenge bound as given. */
  async function optionsFor(userId: string, binding: { purpose: WebauthnPurpose; signInChallengeId?: string }) {
    const owned = await passkeysOf(db, userId);
    if (owned.length === 0) return null;
    const options = await webauthn.requestOptions(owned.map((passkey) => passkey.credentialId), 'preferred');
    await saveWebauthnChallenge(db, options.challenge, { ...binding, userId }, clock.now());
    return options;
  }
}

export type PasskeySignIn = ReturnType<typeof createPasskeySignIn>;
