import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Database, Tx } from '../db/client.js';
import { InputError } from '../errors.js';
import { findUserById } from '../accounts/accounts.js';
import type { AccessClaims } from '../tokens/access-tokens.js';
import { lockUserForSession, revokeUserSessions } from '../sessions/sessions.js';
import type { RequestInfo } from '../request-info.js';
import { deletePasskey, insertPasskey, passkeysOf, type PasskeyRow } from './passkeys.js';
import { assertAddressVerified, type SecondFactors } from './second-factors.js';
import { assertWayToSignIn } from './sign-in-methods.js';
import { challengeOf, type Webauthn } from './webauthn.js';
import { saveWebauthnChallenge, takeWebauthnChallenge } from './webauthn-challenges.js';

/** The longest name a passkey may be given. */
export const MAX_PASSKEY_NAME_LENGTH = 64;

/** Adding and removing a signed-in user's passkeys. */
export function createPasskeyRegistration(deps: {
  db: Database;
  clock: Clock;
  audit: AuditLog;
  webauthn: Webauthn;
  secondFactors: Pick<SecondFactors, 'methodsOf'>;
}) {
  const { db, clock, audit, webauthn, secondFactors } = deps;
  // As for TOTP: a changed factor ends the user's other sessions (a thief's must not outlive it).
  const revokeOthers = (tx: Tx, claims: AccessClaims, now: Date) => revokeUserSessions(tx, claims.sub, now, { except: claims.sid });
  /**
   * As for TOTP, every change of passkeys first locks the user's row: concurrent changes of
   * factors (another passkey, TOTP) then run one after the other, each seeing what the other
   * left (so "last factor removed" is audited when it happens), and a password-only sign-in
   * checking under that lock that no factor exists sees the passkey or ends after it. A session
   * signed out while its change waited for the lock changes nothing (SessionEndedError).
   */
  const lockOwner = (tx: Tx, claims: AccessClaims, now: Date) => lockUserForSession(tx, claims, now);
  const refused = () => new InputError('response', 'The passkey could not be verified. Start the registration again.');

  return {
    /** The user's passkeys, oldest first. */
    passkeysOf: (userId: string) => passkeysOf(db, userId),

    /** Creation options for a new passkey of the user (their existing ones excluded); the challenge is kept for finishRegistration. */
    async startRegistration(claims: AccessClaims) {
      const user = await findUserById(db, claims.sub);
      if (!user) throw new Error('the signed-in user is gone');
      assertAddressVerified(user);
      const options = await webauthn.registrationOptions(user, await passkeysOf(db, user.id));
      await saveWebauthnChallenge(db, options.challenge, { purpose: 'registration', userId: user.id }, clock.now());
      return options;
    },

    /**
     * Verifies the browser's answer to startRegistration's options (the challenge, issued to
     * this user, is spent whatever the outcome) and stores the passkey. Ends the user's other
     * sessions. InputError (field `response`) when it does not verify or is registered already.
     */
    async finishRegistration(claims: AccessClaims, response: unknown, name: string | null, request: RequestInfo): Promise<PasskeyRow> {
      const now = clock.now();
      const challenge = challengeOf(response);
      if (!challenge) throw new InputError('response', 'Not a WebAuthn registration response.');
      const binding = await takeWebauthnChallenge(db, challenge, 'registration', now);
      const verified = binding?.userId === claims.sub ? await webauthn.verifyRegistration(response, challenge) : null;
      if (!verified?.ok) {
        const reason = !binding ? 'unknown_challenge' : binding.userId !== claims.sub ? 'other_user' : verified!.reason;
        await audit.record({ type: 'second_factor_failure', userId: claims.sub, request, detail: { use: 'register_passkey', reason } });
        throw refused();
      }
      const { ok: _ok, ...credential } = verified;
      const added = await db.transaction(async (tx) => {
        await lockOwner(tx, claims, now);
        const row = await insertPasskey(tx, { ...credential, userId: claims.sub, name, createdAt: now });
        if (!row) return null;
        const revokedSessions = await revokeOthers(tx, claims, now);
        const detail = { method: 'PASSKEY', passkeyId: row.id, revokedSessions };
        await audit.record({ type: 'second_factor_added', userId: claims.sub, request, detail }, tx);
        return row;
      });
      if (!added) throw new InputError('response', 'This passkey is registered already.');
      return added;
    },

    /**
     * Removes one of the user's passkeys; false when they have none of that id. Ends the user's
     * other sessions. LastSignInMethodError (nothing removed) when it was the account's last way
     * to sign in: no password, no identity, no other passkey.
     */
    async removePasskey(claims: AccessClaims, id: string, request: RequestInfo): Promise<boolean> {
      const now = clock.now();
      return db.transaction(async (tx) => {
        const owner = await lockOwner(tx, claims, now);
        if (!(await deletePasskey(tx, claims.sub, id))) return false;
        await assertWayToSignIn(tx, owner);
        const revokedSessions = await revokeOthers(tx, claims, now);
        const lastFactor = (await secondFactors.methodsOf(claims.sub, tx)).length === 0;
        await audit.record({ type: 'second_factor_removed', userId: claims.sub, request, detail: { method: 'PASSKEY', passkeyId: id, lastFactor, revokedSessions } }, tx);
        return true;
      });
    },
  };
}

export type PasskeyRegistration = ReturnType<typeof createPasskeyRegistration>;
