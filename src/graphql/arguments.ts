import { z } from 'zod';
import { isAccountEmail, MAX_NAME_LENGTH, normalizeEmail, normalizeName } from '../accounts/email.js';
import { InputError } from '../errors.js';
import { MAX_PASSWORD_LENGTH } from '../credentials/password-policy.js';
import { parseUuid } from '../ids.js';
import { isStorableText, UNSTORABLE_TEXT_MESSAGE } from '../storable-text.js';

/**
 * Argument parsers, applied where the argument is declared (`t.arg.id(...).validate(...)`,
 * @pothos/plugin-validation): resolvers and services receive the parsed value.
 */

/** Text PostgreSQL can store: an id argument runs before the whole-arguments check, so it checks this itself. */
const storable = () => z.string().refine(isStorableText, UNSTORABLE_TEXT_MESSAGE);

/**
 * An id that names a row, or null when it is not a uuid: no row has it. Fields decide what
 * "none" answers (null, NOT_FOUND, FORBIDDEN), so a malformed id reveals no more than an
 * unknown one.
 */
export const rowId = storable().transform((raw) => parseUuid(raw));

/** An id that must be a uuid: anything else is an InputError (INVALID_INPUT) on the argument, with this message. */
export const strictRowId = (message: string) =>
  storable().transform((raw, ctx) => {
    const id = parseUuid(raw);
    if (id) return id;
    ctx.addIssue({ code: 'custom', message });
    return z.NEVER;
  });

/** An email as every lookup keys it (trimmed, NFKC, lower-cased; accounts/email.ts): services never normalize again. */
export const emailKey = storable().transform((raw) => normalizeEmail(raw));

/** The email of a sign-in: its key, and not empty. */
export const signInEmail = emailKey.refine((email) => email !== '', 'Enter your email address.');

/** The password of a sign-in: not empty, and no longer than any stored one can be (not worth hashing). */
export const signInPassword = storable()
  .refine((password) => password !== '', 'Enter your password.')
  .refine((password) => [...password].length <= MAX_PASSWORD_LENGTH, `Passwords have at most ${MAX_PASSWORD_LENGTH} characters.`);

/** The email of a new account: its key, and a valid address. */
export const accountEmail = emailKey.refine(isAccountEmail, 'Enter a valid email address.');

/** The display name of a new account: trimmed, NFC, at most MAX_NAME_LENGTH code points; empty is none. */
export const accountName = storable()
  .transform((raw) => normalizeName(raw))
  .refine((name) => [...name].length <= MAX_NAME_LENGTH, `Names have at most ${MAX_NAME_LENGTH} characters.`)
  .transform((name) => (name === '' ? null : name));

/**
 * Parses a value with one of these parsers outside GraphQL (the CLI), failing the way the API
 * does: InputError on `field` with the parser's message.
 */
export function parseArgument<T>(parser: z.ZodType<T>, value: unknown, field: string): T {
  const parsed = parser.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new InputError(field, parsed.error.issues[0]?.message ?? 'This input is not valid.');
}
