import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  deriveSuccessor,
  generateRefreshToken,
  hashSecret,
  parseRefreshToken,
  secretMatches,
} from '../../src/auth/refresh-tokens.js';

const SHAPE = /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/;

describe('refresh tokens', () => {
  it('generates tokens shaped <id>.<secret> with a 128-bit id and a 256-bit secret', () => {
    const token = generateRefreshToken();
    expect(token.token).toMatch(SHAPE);
    expect(token.token).toBe(`${token.id}.${token.secret}`);
    expect(Buffer.from(token.id, 'base64url')).toHaveLength(16);
    expect(Buffer.from(token.secret, 'base64url')).toHaveLength(32);
  });

  it('generates a different token every time', () => {
    const tokens = Array.from({ length: 200 }, () => generateRefreshToken());
    expect(new Set(tokens.map((t) => t.id)).size).toBe(200);
    expect(new Set(tokens.map((t) => t.secret)).size).toBe(200);
  });

  it('stores the SHA-256 hex of the secret, never the secret', () => {
    const token = generateRefreshToken();
    expect(token.secretHash).toBe(createHash('sha256').update(token.secret).digest('hex'));
    expect(token.secretHash).toBe(hashSecret(token.secret));
    expect(token.secretHash).toMatch(/^[0-9a-f]{64}$/);
    expect(token.secretHash).not.toContain(token.secret);
  });

  it('parses a token of its own shape back into id and secret', () => {
    const token = generateRefreshToken();
    expect(parseRefreshToken(token.token)).toEqual({ id: token.id, secret: token.secret });
  });

  it('refuses to parse anything not of the exact shape', () => {
    const { id, secret, token } = generateRefreshToken();
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
      expect(parseRefreshToken(bad), JSON.stringify(bad.slice(0, 80))).toBeNull();
    }
  });

  it('matches a secret against its stored hash only', () => {
    const token = generateRefreshToken();
    expect(secretMatches(token.secret, token.secretHash)).toBe(true);
    expect(secretMatches(generateRefreshToken().secret, token.secretHash)).toBe(false);
    expect(secretMatches(`${token.secret.slice(0, -1)}${token.secret.endsWith('A') ? 'B' : 'A'}`, token.secretHash)).toBe(false);
  });

  it('treats a stored hash of the wrong length as a mismatch instead of throwing', () => {
    const token = generateRefreshToken();
    expect(secretMatches(token.secret, '')).toBe(false);
    expect(secretMatches(token.secret, token.secretHash.slice(0, 32))).toBe(false);
    expect(secretMatches(token.secret, `${token.secretHash}00`)).toBe(false);
    expect(secretMatches(token.secret, 'not hex at all')).toBe(false);
  });

  it('derives the same successor from the same parent and key', () => {
    const key = randomBytes(32);
    const parent = generateRefreshToken();
    const a = deriveSuccessor(key, parent);
    const b = deriveSuccessor(key, { id: parent.id, secret: parent.secret });
    expect(a).toEqual(b);
    expect(a.token).toMatch(SHAPE);
    expect(a.token).toBe(`${a.id}.${a.secret}`);
    expect(a.secretHash).toBe(hashSecret(a.secret));
    expect(parseRefreshToken(a.token)).toEqual({ id: a.id, secret: a.secret });
  });

  it('derives a successor unlike its parent, and different for another parent, secret or key', () => {
    const key = randomBytes(32);
    const parent = generateRefreshToken();
    const successor = deriveSuccessor(key, parent);
    expect(successor.id).not.toBe(parent.id);
    expect(successor.secret).not.toBe(parent.secret);
    expect(successor.id).not.toBe(successor.secret.slice(0, 22));

    const otherParent = deriveSuccessor(key, generateRefreshToken());
    expect(otherParent.id).not.toBe(successor.id);
    // The parent's secret is an input: a thief who knows only the id cannot compute it.
    const otherSecret = deriveSuccessor(key, { id: parent.id, secret: generateRefreshToken().secret });
    expect(otherSecret.id).not.toBe(successor.id);
    expect(otherSecret.secret).not.toBe(successor.secret);
    const otherKey = deriveSuccessor(randomBytes(32), parent);
    expect(otherKey.id).not.toBe(successor.id);
    expect(otherKey.secret).not.toBe(successor.secret);
  });

  it('derives successors with full-length id and secret', () => {
    const successor = deriveSuccessor(randomBytes(32), generateRefreshToken());
    expect(Buffer.from(successor.id, 'base64url')).toHaveLength(16);
    expect(Buffer.from(successor.secret, 'base64url')).toHaveLength(32);
  });
});
