import { and, eq, isNotNull, isNull, lt, or } from 'drizzle-orm';
import { Secret, TOTP } from 'otpauth';
import type { Database, Tx } from '../db/client.js';
import { totpCredentials, type TotpCredentialRow } from '../db/schema.js';
import type { KeyEncryption } from '../tokens/key-encryption.js';

/** RFC 6238 as every authenticator app reads it: SHA-1, 6 digits, 30-second steps. */
const PARAMETERS = { algorithm: 'SHA1', digits: 6, period: 30 } as const;
/** Codes of the previous and the next step are accepted too (clock drift between phone and server). */
const WINDOW = 1;
/** 160 bits, the size RFC 4226 recommends for SHA-1. */
const SECRET_BYTES = 20;

/** A new secret and what an authenticator app needs to add it. */
export interface TotpEnrollment {
  secret: string;
  otpauthUri: string;
}

/** The time step a code belongs to at `now` (RFC 6238 T). */
const stepAt = (now: Date) => Math.floor(now.getTime() / 1000 / PARAMETERS.period);

/** The label a secret is sealed under: a sealed secret moved to another user's row does not open. */
const sealLabel = (userId: string) => `totp:${userId}`;

/** A user's authenticator-app secret: enrolment, confirmation, and codes spent at most once. */
export function createTotpStore(deps: { encryption: KeyEncryption; issuer: string }) {
  const { encryption, issuer } = deps;

  const open = (sealed: string, userId: string) => {
    const bytes = encryption.open(sealed, sealLabel(userId));
    if (!bytes) throw new Error('a stored TOTP secret does not open with the key-encryption key');
    return Secret.fromBase32(bytes.toString('utf8'));
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
        .values({ userId: user.id, pendingSecret: sealed, pendingSince: now })
        .onConflictDoUpdate({ target: totpCredentials.userId, set: { pendingSecret: sealed, pendingSince: now } });
      const otpauthUri = new TOTP({ ...PARAMETERS, issuer, label: user.email, secret }).toString();
      return { secret: secret.base32, otpauthUri };
    },

    /**
     * Confirms the pending secret with a code of it: it becomes the user's secret, and the
     * code's step counts as spent. False when there is no pending secret or the code is wrong.
     */
    async confirm(tx: Tx, userId: string, code: string, now: Date): Promise<boolean> {
      const [row] = await tx.select().from(totpCredentials).where(eq(totpCredentials.userId, userId)).for('update');
      if (!row?.pendingSecret) return false;
      const step = matchingStep(open(row.pendingSecret, userId), code.trim(), now);
      if (step === null) return false;
      await tx
        .update(totpCredentials)
        .set({ secret: row.pendingSecret, confirmedAt: now, lastUsedStep: step, pendingSecret: null, pendingSince: null })
        .where(eq(totpCredentials.userId, userId));
      return true;
    },

    /**
     * Spends a code of the user's confirmed secret. A code is accepted once: its step (and every
     * earlier one) is then refused, by a conditional write, so of concurrent submissions of one
     * code exactly one wins. False when wrong, replayed, or no secret is confirmed.
     */
    async spend(db: Database | Tx, userId: string, code: string, now: Date): Promise<boolean> {
      const [row] = await db
        .select()
        .from(totpCredentials)
        .where(and(eq(totpCredentials.userId, userId), isNotNull(totpCredentials.secret)));
      if (!row?.secret) return false;
      const step = matchingStep(open(row.secret, userId), code.trim(), now);
      if (step === null) return false;
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
      return spent.length === 1;
    },

    /** Removes the user's secret, confirmed and pending; true when a confirmed one was removed. */
    async remove(tx: Tx, userId: string): Promise<boolean> {
      const removed = await tx.delete(totpCredentials).where(eq(totpCredentials.userId, userId)).returning();
      return removed.some((row) => row.secret !== null);
    },

    /** Whether the user has a confirmed secret. */
    async isEnabled(db: Database | Tx, userId: string): Promise<boolean> {
      const [row] = await db
        .select({ userId: totpCredentials.userId })
        .from(totpCredentials)
        .where(and(eq(totpCredentials.userId, userId), isNotNull(totpCredentials.secret)));
      return row !== undefined;
    },
  };
}

export type TotpStore = ReturnType<typeof createTotpStore>;
export type { TotpCredentialRow };
