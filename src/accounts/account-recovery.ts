import type { AuditLog } from '../audit/audit-log.js';
import type { BackgroundTasks } from '../background-tasks.js';
import type { Clock } from '../clock.js';
import type { Database } from '../db/client.js';
import { InvalidTokenError } from '../errors.js';
import type { Mailer } from '../mail/mailer.js';
import { buildMailLink, passwordResetMail, verificationMail } from '../mail/templates.js';
import {
  findUserByEmail,
  findUserById,
  lockUser,
  markEmailVerified,
  setPasswordHash,
  toAccount,
  type Account,
} from './accounts.js';
import {
  consumeOneTimeToken,
  issueOneTimeToken,
  peekOneTimeToken,
  revokeOneTimeTokens,
  type OneTimeTokenFailure,
  type OneTimeTokenPurpose,
} from './one-time-tokens.js';
import { assertPasswordPolicy, relatedInputs } from '../credentials/password-policy.js';
import type { Passwords } from '../credentials/passwords.js';
import type { AuthService, AuthTokens } from '../sessions/session-service.js';
import { replaceUserSessions, signOutEverywhere, type SessionPolicy } from '../sessions/sessions.js';
import { deleteIdentitiesOf } from '../social/identities.js';
import type { SecondFactors } from '../credentials/second-factors.js';
import { CHALLENGE_TTL_SECONDS, issueChallenge, SecondFactorRequired } from '../credentials/sign-in-challenges.js';
import type { RequestInfo } from '../request-info.js';

export interface AccountRecoveryDeps {
  db: Database;
  clock: Clock;
  audit: AuditLog;
  passwords: Passwords;
  mailer: Mailer;
  tasks: BackgroundTasks;
  auth: Pick<AuthService, 'issueTokens'>;
  sessionPolicy: SessionPolicy;
  /** A user with a second factor gets no session from a reset: the factor is still due. */
  secondFactors: Pick<SecondFactors, 'methodsOf'>;
  /** Base of the links in mails (PUBLIC_URL). */
  publicUrl: string;
  emailVerificationTtl: number;
  passwordResetTtl: number;
}

/** Why an emailed token did not work; `userId` when the token was genuine. */
interface Refusal {
  reason: OneTimeTokenFailure | 'account_disabled';
  userId?: string | undefined;
}

/** The two emailed flows: verifying an address, and resetting a forgotten password. */
export function createAccountRecovery(deps: AccountRecoveryDeps) {
  const { db, clock, audit, passwords, mailer, tasks, auth, sessionPolicy, secondFactors } = deps;

  /** Records a refused use of a genuine token (a replay, an expired link) and throws InvalidTokenError. */
  async function refuse(type: 'email_verified' | 'password_reset', refusal: Refusal, request: RequestInfo): Promise<never> {
    if (refusal.userId) {
      await audit.record({ type, userId: refusal.userId, request, detail: { failed: refusal.reason } });
    }
    throw new InvalidTokenError(refusal.reason);
  }

  const LINKS = {
    verify_email: { page: 'verify-email', mail: verificationMail, ttl: deps.emailVerificationTtl },
    reset_password: { page: 'reset-password', mail: passwordResetMail, ttl: deps.passwordResetTtl },
  } as const;

  /**
   * Issues a link of this purpose and mails it to the user; false when the account turned out
   * disabled (checked under its row lock), so nothing was issued or sent.
   */
  async function mailLink(user: { id: string; email: string; name: string | null }, purpose: OneTimeTokenPurpose): Promise<boolean> {
    const { page, mail, ttl } = LINKS[purpose];
    const issued = await db.transaction((tx) =>
      issueOneTimeToken(tx, { userId: user.id, purpose, now: clock.now(), ttlSeconds: ttl }),
    );
    if (!issued) return false;
    const { token } = issued;
    await mailer.send(
      mail({ to: user.email, name: user.name, link: buildMailLink(deps.publicUrl, page, token), token, expiresInSeconds: ttl }),
    );
    return true;
  }

  async function sendResetMail(email: string, request: RequestInfo): Promise<void> {
    const user = email === '' ? null : await findUserByEmail(db, email);
    const sent = user?.active ? await mailLink(user, 'reset_password') : false;
    const detail = sent ? { sent } : { sent, reason: user ? 'account_disabled' : 'unknown_email' };
    await audit.record({ type: 'password_reset_requested', userId: user?.id, request, detail });
  }

  return {
    /**
     * Mails the signed-in user a link that verifies their address. Nothing is sent when it is
     * verified already. Throws when the mail cannot be handed to the SMTP server.
     */
    async requestEmailVerification(userId: string, request: RequestInfo): Promise<void> {
      const user = await findUserById(db, userId);
      if (!user || !user.active || user.emailVerified) return;
      if (!(await mailLink(user, 'verify_email'))) return;
      await audit.record({ type: 'email_verification_requested', userId, request, detail: { sent: true } });
    },

    /** Spends a verification token and marks the address verified; InvalidTokenError otherwise. */
    async verifyEmail(presented: string, request: RequestInfo): Promise<Account> {
      const options = { purpose: 'verify_email', now: clock.now() } as const;
      // Found first without a lock, so that the transaction can lock the user's row before the
      // token's: the order issuing a token takes too, so the two can never deadlock.
      const peek = await peekOneTimeToken(db, presented, options);
      if (!peek.ok) return refuse('email_verified', peek, request);
      const result = await db.transaction(async (tx) => {
        await lockUser(tx, peek.token.userId);
        const check = await consumeOneTimeToken(tx, presented, options);
        if (!check.ok) return check;
        const { userId } = check.token;
        const user = await markEmailVerified(tx, userId);
        if (!user) return { ok: false, reason: 'account_disabled', userId } as const;
        await audit.record({ type: 'email_verified', userId, request }, tx);
        return { ok: true, user } as const;
      });
      if (!result.ok) return refuse('email_verified', result, request);
      return toAccount(result.user);
    },

    /**
     * Mails a reset link if an active account has this address. The caller answers at once:
     * the lookup and the mail run in the background, so neither the answer nor its timing
     * tells whether the address has an account.
     */
    requestPasswordReset(email: string, request: RequestInfo): void {
      tasks.run('password reset mail', () => sendResetMail(email, request));
    },

    /**
     * Spends a reset token, sets the new password, marks the address verified (the mail
     * reached its owner), revokes every session and token of the user, and signs in anew; for
     * a user with a second factor, answers SecondFactorRequired (thrown) instead of a session.
     * When the address was not verified before, the identities linked to the account are unlinked.
     */
    async resetPassword(presented: string, newPassword: string, request: RequestInfo): Promise<AuthTokens> {
      const now = clock.now();
      const options = { purpose: 'reset_password', now } as const;
      // Checked without spending first: a password the policy refuses leaves the link usable.
      const peek = await peekOneTimeToken(db, presented, options);
      if (!peek.ok) return refuse('password_reset', peek, request);
      const owner = await findUserById(db, peek.token.userId);
      if (!owner || !owner.active) return refuse('password_reset', { reason: 'account_disabled', userId: peek.token.userId }, request);
      await assertPasswordPolicy(newPassword, relatedInputs(owner.email, owner.name), 'newPassword');
      const passwordHash = await passwords.hash(newPassword);

      const result = await db.transaction(async (tx) => {
        // The user's row first, then the token: the order every writer of both takes (a password
        // change or disabling revokes tokens under the same lock), so none can deadlock another.
        const locked = await lockUser(tx, owner.id);
        const check = await consumeOneTimeToken(tx, presented, options);
        if (!check.ok) return check;
        const { userId } = check.token;
        // A concurrent disabling of the account is either seen here or sees our session.
        if (!locked?.active) return { ok: false, reason: 'account_disabled', userId } as const;
        // An address nobody had proven yet: whoever linked providers to this account (or made it
        // through one) was never shown to own the mailbox whose owner is now taking it over, and
        // would otherwise keep signing in to it (account pre-hijacking). Their identities go.
        const unproven = locked.emailVerified ? [] : await deleteIdentitiesOf(tx, userId);
        for (const identity of unproven) {
          const detail = { provider: identity.provider, identityId: identity.id, reason: 'password_reset_of_unverified_email' };
          await audit.record({ type: 'identity_unlinked', userId, request, detail }, tx);
        }
        const user = await setPasswordHash(tx, userId, passwordHash, { now, viaEmail: true });
        await revokeOneTimeTokens(tx, userId, ['reset_password']);
        // A mailbox alone never passes the second factor: with one, the reset signs out everywhere
        // and answers a challenge (bound to the new password) instead of a session.
        const methods = await secondFactors.methodsOf(userId, tx);
        if (methods.length > 0) {
          const revokedSessions = await signOutEverywhere(tx, userId, now);
          const issued = await issueChallenge(tx, { userId, firstStep: { factor: 'pwd', passwordHash }, now });
          await audit.record({ type: 'password_reset', userId, request, detail: { revokedSessions, secondFactorRequired: true } }, tx);
          return { ok: true, challenge: new SecondFactorRequired(issued.challenge, methods, CHALLENGE_TTL_SECONDS) } as const;
        }
        const started = await replaceUserSessions(tx, { userId, request, now, policy: sessionPolicy });
        const detail = { sessionId: started.session.id, revokedSessions: started.revokedSessions };
        await audit.record({ type: 'password_reset', userId, request, detail }, tx);
        return { ok: true, user, ...started } as const;
      });
      if (!result.ok) return refuse('password_reset', result, request);
      if ('challenge' in result) throw result.challenge;
      return auth.issueTokens(result.user, result.session, result.refreshToken, now);
    },
  };
}

export type AccountRecovery = ReturnType<typeof createAccountRecovery>;
