import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateSplitToken, hashSecret, parseSplitToken, secretMatches, splitTokenFromBytes } from '../../src/crypto/split-token.js';

const SHAPE = /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/;

describe('split tokens (<id>.<secret>: refresh tokens and mailed links)', () => {
  it('generates tokens shaped <id>.<secret> with a 128-bit id and a 256-bit secret', () => {
    const token = generateSplitToken();
    expect(token.token).toMatch(SHAPE);
    expect(token.token).toBe(`${token.id}.${token.secret}`);
    expect(Buffer.from(token.id, 'base64url')).toHaveLength(16);
    expect(Buffer.from(token.secret, 'base64url')).toHaveLength(32);
  });

  it('generates a different token every time', () => {
    const tokens = Array.from({ length: 200 }, () => generateSplitToken());
    expect(new Set(tokens.map((t) => t.id)).size).toBe(200);
    expect(new Set(tokens.map((t) => t.secret)).size).toBe(200);
  });

  it('stores the SHA-256 hex of the secret, never the secret', () => {
    const token = generateSplitToken();
    expect(token.secretHash).toBe(createHash('sha256').update(token.secret).digest('hex'));
    expect(token.secretHash).toBe(hashSecret(token.secret));
    expect(token.secretHash).toMatch(/^[0-9a-f]{64}$/);
    expect(token.secretHash).not.toContain(token.secret);
  });

  it('parses a token of its own shape back into id and secret', () => {
    const token = generateSplitToken();
    expect(parseSplitToken(token.token)).toEqual({ id: token.id, secret: token.secret });
  });

  it('refuses to parse anything not of the exact shape', () => {
    const { id, secret, token } = generateSplitToken();
    for (const bad of [
      '',
      '.',
      id,
      `${id}.`,
      `.${secret}`,
      `${id}${secret}`,
      `${id}.${secret}.x`,
      ` ${token}`,
      `${token} `,
      `${token}\n`,
      `${id}.${secret}x`,
      `${id}x.${secret}`,
      `${id.slice(1)}.${secret}`,
      `${id}.${secret.slice(1)}`,
      `${id}.${secret.replace(/.$/, '=')}`,
      `${id}.${secret.replace(/^./, '+')}`,
      `${id}.${secret.replace(/^./, '/')}`,
      'x'.repeat(100_000),
    ]) {
      expect(parseSplitToken(bad), JSON.stringify(bad.slice(0, 80))).toBeNull();
    }
  });

  it('matches a secret against its stored hash only', () => {
    const token = generateSplitToken();
    expect(secretMatches(token.secret, token.secretHash)).toBe(true);
    expect(secretMatches(generateSplitToken().secret, token.secretHash)).toBe(false);
    expect(secretMatches(`${token.secret.slice(0, -1)}${token.secret.endsWith('A') ? 'B' : 'A'}`, token.secretHash)).toBe(false);
  });

  it('treats a stored hash of the wrong length as a mismatch instead of throwing', () => {
    const token = generateSplitToken();
    expect(secretMatches(token.secret, '')).toBe(false);
    expect(secretMatches(token.secret, token.secretHash.slice(0, 32))).toBe(false);
    expect(secretMatches(token.secret, `${token.secretHash}00`)).toBe(false);
    expect(secretMatches(token.secret, 'not hex at all')).toBe(false);
  });

  it('builds a token from the leading bytes it is given, and refuses too few', () => {
    const idBytes = Buffer.alloc(32, 1);
    const secretBytes = Buffer.alloc(32, 2);
    const token = splitTokenFromBytes(idBytes, secretBytes);
    expect(token.id).toBe(idBytes.subarray(0, 16).toString('base64url'));
    expect(token.secret).toBe(secretBytes.toString('base64url'));
    expect(token.token).toMatch(SHAPE);
    expect(token.secretHash).toBe(hashSecret(token.secret));
    expect(() => splitTokenFromBytes(Buffer.alloc(15), secretBytes)).toThrow(RangeError);
    expect(() => splitTokenFromBytes(idBytes, Buffer.alloc(31))).toThrow(RangeError);
  });
});
