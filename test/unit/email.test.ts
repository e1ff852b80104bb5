import { describe, expect, it } from 'vitest';
import { normalizeEmail } from '../../src/accounts/email.js';
import { InputError } from '../../src/errors.js';
import { accountEmail, parseArgument } from '../../src/graphql/arguments.js';

/** The email of a new account, parsed as register's argument (and the CLI) parse it. */
const parseEmail = (raw: string) => parseArgument(accountEmail, raw, 'email');

function inputErrorOf(fn: () => unknown): InputError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return err as InputError;
  }
  throw new Error('expected an InputError');
}

describe('email normalization', () => {
  it('trims surrounding whitespace, including tabs, newlines and no-break spaces', () => {
    expect(normalizeEmail('  ada@example.com \t\n')).toBe('ada@example.com');
    expect(normalizeEmail('\u00A0ada@example.com\u3000')).toBe('ada@example.com');
  });

  it('lower-cases the whole address', () => {
    expect(normalizeEmail('Ada.Lovelace@Example.COM')).toBe('ada.lovelace@example.com');
  });

  it('applies NFKC: compatibility characters and composed forms become one spelling', () => {
    // Fullwidth letters and digits.
    expect(normalizeEmail('\uFF21\uFF24\uFF21\uFF11@example.com')).toBe('ada1@example.com');
    // e + combining acute and precomposed é are one address.
    expect(normalizeEmail('Re\u0301my@example.com')).toBe(normalizeEmail('R\u00E9my@example.com'));
    expect(normalizeEmail('Re\u0301my@example.com')).toBe('r\u00E9my@example.com');
    // The "fi" ligature.
    expect(normalizeEmail('\uFB01sh@example.com')).toBe('fish@example.com');
  });

  it('is idempotent on what it produces', () => {
    for (const raw of ['  ADA@Example.com ', '\uFF21da@example.com', 'Re\u0301my@EXAMPLE.com', '\u0130stanbul@example.com']) {
      const once = normalizeEmail(raw);
      expect(normalizeEmail(once), raw).toBe(once);
    }
  });

  it('parses a valid address into its normalized form', () => {
    expect(parseEmail('  Ada@Example.COM ')).toBe('ada@example.com');
    expect(parseEmail('first.last+tag@sub.example.co.uk')).toBe('first.last+tag@sub.example.co.uk');
  });

  it('rejects invalid addresses with InputError on field email, code INVALID_INPUT', () => {
    for (const raw of ['', '   ', 'ada', 'ada@', '@example.com', 'ada@@example.com', 'ada@example', 'a da@example.com', 'ada@exa mple.com']) {
      const err = inputErrorOf(() => parseEmail(raw));
      expect(err.field, raw).toBe('email');
      expect(err.code, raw).toBe('INVALID_INPUT');
    }
  });

  it('rejects addresses longer than 254 characters', () => {
    const local = 'a'.repeat(64);
    const domain = `${Array.from({ length: 4 }, () => 'b'.repeat(60)).join('.')}.com`; // 247 characters
    const long = `${local}@${domain}`;
    expect(long.length).toBeGreaterThan(254);
    expect(inputErrorOf(() => parseEmail(long)).field).toBe('email');
  });
});
