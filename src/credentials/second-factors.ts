import { eq, sql, type SQL } from 'drizzle-orm';
import type { PgTable } from 'drizzle-orm/pg-core';
import QRCode from 'qrcode';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Database, Tx } from '../db/client.js';
import { passkeys, recoveryCodes, totpCredentials, users, type UserRow } from '../db/schema.js';
import { EmailNotVerifiedError, InvalidSecondFactorError, NoSecondFactorError } from '../errors.js';
import { findUserById } from '../accounts/accounts.js';
import type { AccessClaims } from '../tokens/access-tokens.js';
import { lockUserForSession, revokeUserSessions } from '../sessions/sessions.js';
import type { RequestInfo } from '../request-info.js';
import { deleteRecoveryCodes, replaceRecoveryCodes, spendRecoveryCode, unusedCodesOf } from './recovery-codes.js';
import type { SecondFactorMethod } from './sign-in-challenges.js';
import { confirmedSecretOf, type TotpStore } from './totp.js';

export type { SecondFactorMethod };

/** Where a code was presented, for the audit event of a wrong one. */
export type CodeUse = 'sign_in' | 'reauthenticate' | 'confirm_totp';

/**
 * How checking a code ended. `unverifiable`: the user's TOTP secret does not open with this
 * server's key (the operator changed it), so no app code can pass; it is not the user's wrong guess.
 */
export type CodeVerdict =
  | { ok: true; amr: 'otp'; method: SecondFactorMethod }
  | { ok: false; reason: 'wrong_code' | 'unverifiable'; method: SecondFactorMethod };

/** A code that did not pass. */
export type RefusedCode = Extract<CodeVerdict, { ok: false }>;

/**
 * Adding a second factor needs a verified address. Until someone has proven the mailbox, the
 * account may be a pre-hijacker's (registered with another's address, waiting for its owner):
 * a factor enrolled then would hold the owner out after their password reset, and a reset never
 * removes a factor, since a mailbox alone must not switch one off. EmailNotVerifiedError.
 */
export function assertAddressVerified(user: Pick<UserRow, 'emailVerified'>): void {
  if (!user.emailVerified) throw new EmailNotVerifiedError('second-factor');
}

/** What enrollTotp answers: the secret, its otpauth:// URI, and that URI as a QR code (SVG). */
export interface TotpEnrollmentAnswer {
  secret: string;
  otpauthUri: string;
  qrCodeSvg: string;
}

/** Enrolling, confirming and removing second factors, and checking their codes. */
export function createSecondFactors(deps: { db: Database; clock: Clock; audit: AuditLog; totp: TotpStore }) {
  const { db, clock, audit, totp } = deps;

  /**
   * Changing factors ends the user's other sessions (in the caller's transaction): a thief's
   * session must not outlive the owner's turning on (or re-keying) a factor, nor keep its
   * access while the owner turns one off.
   */
  const revokeOthers = (tx: Tx, claims: AccessClaims, now: Date) => revokeUserSessions(tx, claims.sub, now, { except: claims.sid });

  /**
   * Every change to a user's factors first locks the user's row, the lock under which a
   * password-only sign-in (and a password reset) checks that the user has no factor before it
   * opens a session: a change either is seen there, or waits and then ends that session. And
   * under it the acting session must still be live: one signed out while its change waited (by
   * the owner adding a factor) changes nothing.
   */
  const lockOwner = (tx: Tx, claims: AccessClaims, now: Date) => lockUserForSession(tx, claims, now);

  /** One statement (it runs in every password sign-in): which kinds of factor the user has. */
  async function methodsOf(executor: Database | Tx, userId: string): Promise<SecondFactorMethod[]> {
    const any = (table: PgTable, where: SQL | undefined) => sql<boolean>`exists (select 1 from ${table} where ${where})`.mapWith(Boolean);
    const [found] = await executor
      .select({
        totp: any(totpCredentials, confirmedSecretOf(userId)),
        codes: any(recoveryCodes, unusedCodesOf(userId)),
        passkey: any(passkeys, eq(passkeys.userId, userId)),
      })
      .from(users)
      .where(eq(users.id, userId));
    const methods: SecondFactorMethod[] = [];
    if (found?.totp) {
      methods.push('TOTP');
      // Recovery codes stand in for the authenticator app: without it they are no factor.
      if (found.codes) methods.push('RECOVERY_CODE');
    }
    if (found?.passkey) methods.push('PASSKEY');
    return methods;
  }

  return {
    /** The factors the user can pass now (empty: password only); in the caller's transaction when given one. */
    methodsOf: (userId: string, executor: Database | Tx = db) => methodsOf(executor, userId),

    /** A new pending authenticator-app secret; it works only once confirmTotp has seen a code of it. */
    async enrollTotp(claims: AccessClaims): Promise<TotpEnrollmentAnswer> {
      const user = await findUserById(db, claims.sub);
      if (!user) throw new Error('the signed-in user is gone');
      assertAddressVerified(user);
      const enrollment = await db.transaction((tx) => totp.enroll(tx, user, clock.now()));
      const qrCodeSvg = await QRCode.toString(enrollment.otpauthUri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
      return { ...enrollment, qrCodeSvg };
    },

    /**
     * Confirms the pending secret with a code of it and returns a new set of recovery codes (shown
     * this once; any older set stops working). Ends the user's other sessions. A refusal is
     * audited with its reason; a pending secret dies after MAX_PENDING_TOTP_GUESSES codes or
     * PENDING_TOTP_TTL_SECONDS (see totp.ts).
     */
    async confirmTotp(claims: AccessClaims, code: string, request: RequestInfo): Promise<{ codes: string[] }> {
      const now = clock.now();
      const outcome = await db.transaction(async (tx) => {
        await lockOwner(tx, claims, now);
        const confirmation = await totp.confirm(tx, claims.sub, code, now);
        if (!confirmation.ok) return confirmation; // committed: the code stays counted against the pending secret
        const issued = await replaceRecoveryCodes(tx, claims.sub, now);
        const revokedSessions = await revokeOthers(tx, claims, now);
        await audit.record({ type: 'second_factor_added', userId: claims.sub, request, detail: { method: 'TOTP', revokedSessions } }, tx);
        return { ok: true as const, codes: issued };
      });
      if (!outcome.ok) {
        const { reason } = outcome;
        await audit.record({ type: 'second_factor_failure', userId: claims.sub, request, detail: { use: 'confirm_totp', reason } });
        throw new InvalidSecondFactorError(reason);
      }
      return { codes: outcome.codes };
    },

    /** Turns the authenticator app off (and with it the recovery codes). Ends the user's other sessions. False when it was off. */
    async disableTotp(claims: AccessClaims, request: RequestInfo): Promise<boolean> {
      const now = clock.now();
      return db.transaction(async (tx) => {
        await lockOwner(tx, claims, now);
        if (!(await totp.remove(tx, claims.sub))) return false;
        await deleteRecoveryCodes(tx, claims.sub);
        const revokedSessions = await revokeOthers(tx, claims, now);
        const remaining = await methodsOf(tx, claims.sub);
        const detail = { method: 'TOTP', lastFactor: remaining.length === 0, revokedSessions };
        await audit.record({ type: 'second_factor_removed', userId: claims.sub, request, detail }, tx);
        return true;
      });
    },

    /** A new set of recovery codes (the old set stops working). Ends the user's other sessions. */
    async regenerateRecoveryCodes(claims: AccessClaims, request: RequestInfo): Promise<{ codes: string[] }> {
      const now = clock.now();
      const codes = await db.transaction(async (tx) => {
        // Under the lock: a disableTotp committing meanwhile is seen, never left with a fresh set of codes.
        await lockOwner(tx, claims, now);
        if (!(await totp.isEnabled(tx, claims.sub))) return null;
        const issued = await replaceRecoveryCodes(tx, claims.sub, now);
        const revokedSessions = await revokeOthers(tx, claims, now);
        await audit.record({ type: 'recovery_codes_regenerated', userId: claims.sub, request, detail: { revokedSessions } }, tx);
        return issued;
      });
      if (!codes) throw new NoSecondFactorError();
      return { codes };
    },

    /**
     * Spends a second-factor code of the user, an authenticator-app code (6 digits) or a recovery
     * code, in `executor`: the transaction of what the code is spent for, so that a code is spent
     * only if that commits too. Returns the `amr` value it earns, or why not; audits nothing (the
     * caller records a refusal with codeRefused, outside a transaction it may roll back).
     */
    async spendCode(executor: Database | Tx, userId: string, code: string, now: Date): Promise<CodeVerdict> {
      const method: SecondFactorMethod = totp.isTotpCode(code) ? 'TOTP' : 'RECOVERY_CODE';
      const outcome =
        method === 'TOTP' ? await totp.spend(executor, userId, code, now) : (await spendRecoveryCode(executor, userId, code, now)) ? 'spent' : 'wrong';
      if (outcome === 'spent') return { ok: true, amr: 'otp', method };
      return { ok: false, reason: outcome === 'unreadable' ? 'unverifiable' : 'wrong_code', method };
    },

    /** Audits a code that did not pass (every failed code is an audit event). */
    async codeRefused(userId: string, refused: RefusedCode, request: RequestInfo, use: CodeUse): Promise<void> {
      const { method, reason } = refused;
      await audit.record({ type: 'second_factor_failure', userId, request, detail: { use, method, ...(reason === 'unverifiable' && { reason }) } });
    },
  };
}

export type SecondFactors = ReturnType<typeof createSecondFactors>;
