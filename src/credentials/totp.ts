import { and, eq, gt, isNotNull, isNull, lt, or, sql } from 'drizzle-orm';
import { Secret, TOTP } from 'otpauth';
import type { Database, Tx } from '../db/client.js';
import { totpCredentials, type TotpCredentialRow } from '../db/schema.js';
import type { Logger } from '../logger.js';
import type { KeyEncryption } from '../tokens/key-encryption.js';
import { addSeconds } from '../time.js';

/** RFC 6238 as every authenticator app reads it: SHA-1, 6 digits, 30-second steps. */
const PARAMETERS = { algorithm: 'SHA1', digits: 6, period: 30 } as const;
/** Codes of the previous and the next step are accepted too (clock drift between phone and server). */
const WINDOW = 1;
/** 160 bits, the size RFC 4226 recommends for SHA-1. */
const SECRET_BYTES = 20;
/**
 * Codes confirmTotp checks against one pending secret: confirming needs no recent sign-in, so a
 * stale (stolen) session could otherwise guess the code of a secret its owner has not confirmed
 * yet, and a hit would turn the app on with the owner's secret and hand the guesser the recovery
 * codes. Counted on the secret, so the cap holds with RATE_LIMITS=off too.
 */
export const MAX_PENDING_TOTP_GUESSES = 5;
/** Seconds a pending secret can be confirmed for after enrollTotp (10 minutes): the window to guess it closes. */
export const PENDING_TOTP_TTL_SECONDS = 10 * 60;

/** A new secret and what an authenticator app needs to add it. */
export interface TotpEnrollment {
  secret: string;
  otpauthUri: string;
}

/** The time step a code belongs to at `now` (RFC 6238 T). */
const stepAt = (now: Date) => Math.floor(now.getTime() / 1000 / PARAMETERS.period);

/** The label a secret is sealed under: a sealed secret moved to another user's row does not open. */
const sealLabel = (userId: string) => `totp:${userId}`;

/** How spending a code ended; `unreadable`: the stored secret does not open with this server's key, so no code can be checked. */
export type TotpSpend = 'spent' | 'wrong' | 'unreadable';

/**
 * Why a confirmation code was refused: `not_enrolled` (no pending secret), `expired` (enrolled over
 * PENDING_TOTP_TTL_SECONDS ago), `exhausted` (MAX_PENDING_TOTP_GUESSES codes were presented for it),
 * `unverifiable` (it does not open with this server's key), `wrong_code`. Only enrolling again helps
 * the first four.
 */
export type TotpConfirmRefusal = 'not_enrolled' | 'expired' | 'exhausted' | 'unverifiable' | 'wrong_code';

/** How confirming a pending secret ended. */
export type TotpConfirmation = { ok: true } | { ok: false; reason: TotpConfirmRefusal };

/** The rows of the user's confirmed secret (a pending one does not count until confirmTotp). */
export const confirmedSecretOf = (userId: string) => and(eq(totpCredentials.userId, userId), isNotNull(totpCredentials.secret));

/** A user's authenticator-app secret: enrolment, confirmation, and codes spent at most once. */
export function createTotpStore(deps: { encryption: KeyEncryption; issuer: string; logger: Pick<Logger, 'error'> }) {
  const { encryption, issuer, logger } = deps;

  /**
   * The secret, or null when it was sealed under another key (KEY_ENCRYPTION_KEY added or
   * changed, or under HS* without it JWT_SECRET changed): the operator's fault, not the user's,
   * so it is logged (the user's id only) and answered as a code that cannot pass.
   */
  const open = (sealed: string, userId: string) => {
    const bytes = encryption.open(sealed, sealLabel(userId));
    if (bytes) return Secret.fromBase32(bytes.toString('utf8'));
    logger.error(
      { userId },
      'a stored TOTP secret does not open with the current key-encryption key (KEY_ENCRYPTION_KEY, or under HS* JWT_SECRET, changed?): ' +
        'its codes cannot be checked; the user needs a recovery code',
    );
    return null;
  };

  /** The step of `code` within the window around now, or null. */
  const matchingStep = (secret: Secret, code: string, now: Date): number | null => {
    if (!/^\d{6}$/.test(code)) return null;
    const delta = TOTP.validate({ ...PARAMETERS, secret, token: code, timestamp: now.getTime(), window: WINDOW });
    return delta === null ? null : stepAt(now) + delta;
  };

  return {
    /** Whether `code` looks like an authenticator-app code (rather than a recovery code). */
    isTotpCode: (code: string) => /^\d{6}$/.test(code.trim()),

    /** Stores a new pending secret for the user (replacing a pending one; a confirmed one stays until confirmation). */
    async enroll(tx: Tx, user: { id: string; email: string }, now: Date): Promise<TotpEnrollment> {
      const secret = new Secret({ size: SECRET_BYTES });
      const sealed = encryption.seal(Buffer.from(secret.base32, 'utf8'), sealLabel(user.id));
      await tx
        .insert(totpCredentials)
        .values({ userId: user.id, pendingSecret: sealed, pendingSince: now, pendingGuesses: 0 })
        .onConflictDoUpdate({ target: totpCredentials.userId, set: { pendingSecret: sealed, pendingSince: now, pendingGuesses: 0 } });
      const otpauthUri = new TOTP({ ...PARAMETERS, issuer, label: user.email, secret }).toString();
      return { secret: secret.base32, otpauthUri };
    },

    /**
     * Confirms the pending secret with a code of it: it becomes the user's secret, and the code's
     * step counts as spent. The code is first counted against the pending secret, by a conditional
     * write BEFORE it is checked: of concurrent codes at most MAX_PENDING_TOTP_GUESSES are ever
     * counted, so checked, and a secret past PENDING_TOTP_TTL_SECONDS checks none. The count is
     * in the caller's transaction, which commits it with the refusal.
     */
    async confirm(tx: Tx, userId: string, code: string, now: Date): Promise<TotpConfirmation> {
      const enrolledAfter = addSeconds(now, -PENDING_TOTP_TTL_SECONDS);
      const [row] = await tx
        .update(totpCredentials)
        .set({ pendingGuesses: sql`${totpCredentials.pendingGuesses} + 1` })
        .where(
          and(
            eq(totpCredentials.userId, userId),
            isNotNull(totpCredentials.pendingSecret),
            gt(totpCredentials.pendingSince, enrolledAfter),
            lt(totpCredentials.pendingGuesses, MAX_PENDING_TOTP_GUESSES),
          ),
        )
        .returning();
      if (!row?.pendingSecret) {
        const [dead] = await tx.select().from(totpCredentials).where(eq(totpCredentials.userId, userId));
        if (!dead?.pendingSecret) return { ok: false, reason: 'not_enrolled' };
        const expired = !dead.pendingSince || dead.pendingSince <= enrolledAfter;
        return { ok: false, reason: expired ? 'expired' : 'exhausted' };
      }
      const secret = open(row.pendingSecret, userId);
      if (!secret) return { ok: false, reason: 'unverifiable' }; // enrolling again seals a new pending secret under the current key
      const step = matchingStep(secret, code.trim(), now);
      if (step === null) return { ok: false, reason: 'wrong_code' };
      await tx
        .update(totpCredentials)
        .set({ secret: row.pendingSecret, confirmedAt: now, lastUsedStep: step, pendingSecret: null, pendingSince: null, pendingGuesses: 0 })
        .where(eq(totpCredentials.userId, userId));
      return { ok: true };
    },

    /**
     * Spends a code of the user's confirmed secret. A code is accepted once: its step (and every
     * earlier one) is then refused, by a conditional write, so of concurrent submissions of one
     * code exactly one wins. `wrong` when wrong, replayed, or no secret is confirmed.
     */
    async spend(db: Database | Tx, userId: string, code: string, now: Date): Promise<TotpSpend> {
      const [row] = await db
        .select()
        .from(totpCredentials)
        .where(and(eq(totpCredentials.userId, userId), isNotNull(totpCredentials.secret)));
      if (!row?.secret) return 'wrong';
      const secret = open(row.secret, userId);
      if (!secret) return 'unreadable';
      const step = matchingStep(secret, code.trim(), now);
      if (step === null) return 'wrong';
      const spent = await db
        .update(totpCredentials)
        .set({ lastUsedStep: step })
        .where(
          and(
            eq(totpCredentials.userId, userId),
            eq(totpCredentials.secret, row.secret),
            or(isNull(totpCredentials.lastUsedStep), lt(totpCredentials.lastUsedStep, step)),
          ),
        )
        .returning({ userId: totpCredentials.userId });
      return spent.length === 1 ? 'spent' : 'wrong';
    },

    /** Removes the user's secret, confirmed and pending; true when a confirmed one was removed. */
    async remove(tx: Tx, userId: string): Promise<boolean> {
      const removed = await tx.delete(totpCredentials).where(eq(totpCredentials.userId, userId)).returning();
      return removed.some((row) => row.secret !== null);
    },

    /** Whether the user has a confirmed secret. */
    async isEnabled(db: Database | Tx, userId: string): Promise<boolean> {
      const [row] = await db.select({ userId: totpCredentials.userId }).from(totpCredentials).where(confirmedSecretOf(userId));
      return row !== undefined;
    },
  };
}

export type TotpStore = ReturnType<typeof createTotpStore>;
export type { TotpCredentialRow };
