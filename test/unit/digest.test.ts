import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { lockoutKey } from '../../src/abuse/lockout.js';
import { limitKey } from '../../src/abuse/rate-limiter.js';
import { sha256Digest } from '../../src/crypto/digest.js';

const sha256 = (text: string) => createHash('sha256').update(text);

describe('sha256Digest', () => {
  it('gives SHA-256 of the UTF-8 text in the encoding asked for', () => {
    for (const text of ['', 'alice@example.com', '203.0.113.7', 'zoë@exämple.com']) {
      expect(sha256Digest(text, 'hex')).toBe(sha256(text).digest('hex'));
      expect(sha256Digest(text, 'base64url')).toBe(sha256(text).digest('base64url'));
    }
  });

  // Stored formats: a change would orphan the rows written before it (counters, lockouts).
  it('keeps the stored format of lockout and rate-limit keys', () => {
    expect(lockoutKey('alice@example.com')).toBe(sha256('alice@example.com').digest('base64url'));
    expect(limitKey('login_ip', '203.0.113.7')).toBe(`login_ip:${sha256('203.0.113.7').digest('base64url')}`);
  });
});
