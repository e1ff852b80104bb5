import { z } from 'zod';

const emailShape = z.email();

/**
 * The one normalization applied to an email on every path (register, login, lookups):
 * trimmed, Unicode NFKC, lower-cased. Two spellings that normalize alike are one account.
 */
export function normalizeEmail(raw: string): string {
  return raw.trim().normalize('NFKC').toLowerCase();
}

/** Whether a normalized email may name a new account (a valid address of at most 254 characters). */
export function isAccountEmail(email: string): boolean {
  return email.length <= 254 && emailShape.safeParse(email).success;
}

/** The longest display name, in code points. */
export const MAX_NAME_LENGTH = 100;

/** A display name as stored: trimmed, NFC; empty is none. */
export function normalizeName(raw: string): string {
  return raw.trim().normalize('NFC');
}
