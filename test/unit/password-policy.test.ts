import { describe, expect, it } from 'vitest';
import { assertPasswordPolicy, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, relatedInputs } from '../../src/credentials/password-policy.js';
import { InputError } from '../../src/errors.js';

/** A strong password of exactly `length` characters. */
const strong = (length: number) => 'kT9#mQ2$xV7!pL4&'.repeat(Math.ceil(length / 16)).slice(0, length);

async function rejection(password: string, related: string[] = [], field?: string): Promise<InputError> {
  const err = await assertPasswordPolicy(password, related, field).then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof InputError)) throw new Error(`expected an InputError for ${JSON.stringify(password.slice(0, 40))}, got ${String(err)}`);
  return err;
}

describe('password policy', () => {
  it('allows 8 to 256 characters', () => {
    expect(MIN_PASSWORD_LENGTH).toBe(8);
    expect(MAX_PASSWORD_LENGTH).toBe(256);
  });

  it('accepts a strong password of exactly 8 characters', async () => {
    await expect(assertPasswordPolicy(strong(8))).resolves.toBeUndefined();
  });

  it('accepts a strong password of exactly 256 characters', async () => {
    await expect(assertPasswordPolicy(strong(256))).resolves.toBeUndefined();
  });

  it('rejects 7 characters with WEAK_PASSWORD on field password', async () => {
    const err = await rejection(strong(7));
    expect(err).toMatchObject({ code: 'WEAK_PASSWORD', field: 'password' });
  });

  it('rejects 257 characters with WEAK_PASSWORD on field password', async () => {
    const err = await rejection(strong(257));
    expect(err).toMatchObject({ code: 'WEAK_PASSWORD', field: 'password' });
  });

  it('rejects the empty password', async () => {
    expect(await rejection('')).toMatchObject({ code: 'WEAK_PASSWORD', field: 'password' });
  });

  it('counts characters as code points, not UTF-16 units', async () => {
    // Seven astral characters are fourteen UTF-16 units but still too short.
    const sevenAstral = '\u{1F98A}\u{1F419}\u{1F335}\u{1F680}\u{1F9ED}\u{1F3B2}\u{1F4A1}';
    expect(sevenAstral.length).toBe(14);
    expect(await rejection(sevenAstral)).toMatchObject({ code: 'WEAK_PASSWORD' });
    // 256 characters of which some are astral: 256 code points, more UTF-16 units, accepted.
    const mixed = `${'\u{1F98A}\u{1F419}\u{1F335}\u{1F680}'.repeat(4)}${strong(240)}`;
    expect([...mixed]).toHaveLength(256);
    expect(mixed.length).toBeGreaterThan(256);
    await expect(assertPasswordPolicy(mixed)).resolves.toBeUndefined();
  });

  it('rejects common passwords', async () => {
    for (const password of ['password123', 'qwertyuiop', '12345678', 'iloveyou', 'Password1', 'letmein123', 'abcdefgh']) {
      expect(await rejection(password), password).toMatchObject({ code: 'WEAK_PASSWORD', field: 'password' });
    }
  });

  it('rejects a password that is the email or the name given as related input', async () => {
    const email = 'marguerite-quintessa@example.com';
    await expect(assertPasswordPolicy(email)).resolves.toBeUndefined();
    expect(await rejection(email, [email])).toMatchObject({ code: 'WEAK_PASSWORD', field: 'password' });
    await expect(assertPasswordPolicy('Marguerite Quintessa')).resolves.toBeUndefined();
    expect(await rejection('Marguerite Quintessa', ['x@example.com', 'Marguerite Quintessa'])).toMatchObject({
      code: 'WEAK_PASSWORD',
    });
  });

  // zxcvbn matches each related input as one whole word, so register lists the email's local
  // part and the name's words separately (relatedInputs in src/credentials/password-policy.ts).
  it('rejects a password that is the local part of the email, as register checks it', async () => {
    const email = 'margueritequintessa@example.com';
    await expect(assertPasswordPolicy('margueritequintessa')).resolves.toBeUndefined();
    expect(await rejection('margueritequintessa', relatedInputs(email, null))).toMatchObject({
      code: 'WEAK_PASSWORD',
      field: 'password',
    });
  });

  it('rejects a password made of a word of the name, as register checks it', async () => {
    expect(await rejection('quintessa', relatedInputs('x@example.com', 'Marguerite Quintessa'))).toMatchObject({
      code: 'WEAK_PASSWORD',
    });
  });

  it('names the given field', async () => {
    expect(await rejection('short', [], 'newPassword')).toMatchObject({ code: 'WEAK_PASSWORD', field: 'newPassword' });
  });

  it('gives a non-empty message for every rejection', async () => {
    for (const password of ['short', 'password123', strong(257)]) {
      expect((await rejection(password)).message.trim()).not.toBe('');
    }
  });
});
