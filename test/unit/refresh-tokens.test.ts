import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deriveSuccessor } from '../../src/tokens/refresh-tokens.js';
import { generateSplitToken, hashSecret, parseSplitToken } from '../../src/crypto/split-token.js';

const SHAPE = /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/;

describe('refresh token successors', () => {
  it('derives the same successor from the same parent and key', () => {
    const key = randomBytes(32);
    const parent = generateSplitToken();
    const a = deriveSuccessor(key, parent);
    const b = deriveSuccessor(key, { id: parent.id, secret: parent.secret });
    expect(a).toEqual(b);
    expect(a.token).toMatch(SHAPE);
    expect(a.token).toBe(`${a.id}.${a.secret}`);
    expect(a.secretHash).toBe(hashSecret(a.secret));
    expect(parseSplitToken(a.token)).toEqual({ id: a.id, secret: a.secret });
  });

  it('derives a successor unlike its parent, and different for another parent, secret or key', () => {
    const key = randomBytes(32);
    const parent = generateSplitToken();
    const successor = deriveSuccessor(key, parent);
    expect(successor.id).not.toBe(parent.id);
    expect(successor.secret).not.toBe(parent.secret);
    expect(successor.id).not.toBe(successor.secret.slice(0, 22));

    const otherParent = deriveSuccessor(key, generateSplitToken());
    expect(otherParent.id).not.toBe(successor.id);
    // The parent's secret is an input: a thief who knows only the id cannot compute it.
    const otherSecret = deriveSuccessor(key, { id: parent.id, secret: generateSplitToken().secret });
    expect(otherSecret.id).not.toBe(successor.id);
    expect(otherSecret.secret).not.toBe(successor.secret);
    const otherKey = deriveSuccessor(randomBytes(32), parent);
    expect(otherKey.id).not.toBe(successor.id);
    expect(otherKey.secret).not.toBe(successor.secret);
  });

  it('derives successors with full-length id and secret', () => {
    const successor = deriveSuccessor(randomBytes(32), generateSplitToken());
    expect(Buffer.from(successor.id, 'base64url')).toHaveLength(16);
    expect(Buffer.from(successor.secret, 'base64url')).toHaveLength(32);
  });
});
