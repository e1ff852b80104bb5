import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Database } from '../db/client.js';
import { InputError, InvalidCredentialsError } from '../errors.js';
import { findUserById, setPasswordHash } from '../accounts/accounts.js';
import { revokeOneTimeTokens } from '../accounts/one-time-tokens.js';
import { assertPasswordPolicy, relatedInputs, MAX_PASSWORD_LENGTH } from './password-policy.js';
import type { Passwords } from './passwords.js';
import type { AuthService, AuthTokens } from '../sessions/session-service.js';
import { lockUserForSession, replaceUserSessions, type SessionPolicy } from '../sessions/sessions.js';
import type { AccessClaims } from '../tokens/access-tokens.js';
import type { RequestInfo } from '../request-info.js';

export interface PasswordChangeDeps {
  db: Database;
  clock: Clock;
  audit: AuditLog;
  passwords: Passwords;
  auth: Pick<AuthService, 'issueTokens'>;
  sessionPolicy: SessionPolicy;
}

/** Changing the password of the signed-in user. */
export function createPasswordChange(deps: PasswordChangeDeps) {
  const { db, clock, audit, passwords, auth, sessionPolicy } = deps;

  return {
    /**
     * Checks the current password, applies the policy to the new one (which may not be the
     * current one: InputError WEAK_PASSWORD on newPassword), then revokes every session of the
     * user, the caller's included, and every access token issued so far, and returns tokens
     * of a new session. The caller continues on those; anyone else holding a token is out.
     */
    async changePassword(input: {
      /** The caller's: their session must still be live under the lock, and the new one keeps its amr. */
      claims: Pick<AccessClaims, 'sub' | 'sid' | 'amr'>;
      currentPassword: string;
      newPassword: string;
      request: RequestInfo;
    }): Promise<AuthTokens> {
      const { claims, currentPassword, newPassword, request } = input;
      const userId = claims.sub;
      // How the caller's session was authenticated: the new session keeps it.
      const amr = claims.amr.length > 0 ? claims.amr : ['pwd'];
      const user = await findUserById(db, userId);
      if (!user || !user.active) throw new InvalidCredentialsError();
      // No stored password is longer than the policy allows; such an input is not worth hashing.
      const check =
        [...currentPassword].length > MAX_PASSWORD_LENGTH ? { ok: false } : await passwords.verify(user.passwordHash, currentPassword);
      if (!check.ok) {
        await audit.record({ type: 'password_change', userId, request, detail: { failed: 'wrong_password' } });
        throw new InvalidCredentialsError();
      }
      if (newPassword === currentPassword) {
        throw new InputError('newPassword', 'The new password must differ from the current one.', 'WEAK_PASSWORD');
      }
      await assertPasswordPolicy(newPassword, relatedInputs(user.email, user.name), 'newPassword');
      const passwordHash = await passwords.hash(newPassword);

      const now = clock.now();
      const changed = await db.transaction(async (tx) => {
        // The current password was checked against the hash read above: it must still be the
        // stored one, or a concurrent change or reset would be undone with the old password. And
        // the caller's session must still be live (SessionEndedError): one signed out while it
        // waited, by the owner adding a factor say, changes nothing.
        const locked = await lockUserForSession(tx, claims, now);
        if (locked.passwordHash !== user.passwordHash || !locked.active) return null;
        const updated = await setPasswordHash(tx, userId, passwordHash, { now });
        await revokeOneTimeTokens(tx, userId, ['reset_password']);
        const replaced = await replaceUserSessions(tx, { userId, request, now, policy: sessionPolicy, amr });
        const detail = { sessionId: replaced.session.id, revokedSessions: replaced.revokedSessions };
        await audit.record({ type: 'password_change', userId, request, detail }, tx);
        return { ...replaced, user: updated };
      });
      if (!changed) {
        await audit.record({ type: 'password_change', userId, request, detail: { failed: 'stale_password' } });
        throw new InvalidCredentialsError();
      }
      return auth.issueTokens(changed.user, changed.session, changed.refreshToken, now);
    },
  };
}

export type PasswordChange = ReturnType<typeof createPasswordChange>;
