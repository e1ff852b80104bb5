import { z } from 'zod';
import { InputError } from '../errors.js';

const emailShape = z.email();

/**
 * The one normalization applied to an email on every path (register, login, lookups):
 * trimmed, Unicode NFKC, lower-cased. Two spellings that normalize alike are one account.
 */
export function normalizeEmail(raw: string): string {
  return raw.trim().normalize('NFKC').toLowerCase();
}

/** Normalizes and validates an email address, or throws InputError(field: "email"). */
export function parseEmail(raw: string): string {
  const email = normalizeEmail(raw);
  if (email.length > 254 || !emailShape.safeParse(email).success) {
    throw new InputError('email', 'Enter a valid email address.');
  }
  return email;
}
