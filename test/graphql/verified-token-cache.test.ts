/**
 * The verified-token cache on the request path (issue 12): jose verifies an access token once,
 * however many requests carry it, and a token altered in any way is never answered from the
 * cache. (The codec's own tests, test/unit/access-tokens.test.ts, cover expiry, a retired key
 * and the bound under a flood of distinct tokens.)
 */
import { jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { claimsOf, expectUnauthenticated, mint, tamperClaims, unsignedToken } from '../support/forge.js';
import { ME_ID, registerUser } from '../support/operations.js';

// jose as the app imports it, its verification counted.
vi.mock('jose', async (importOriginal) => {
  const jose = await importOriginal<typeof import('jose')>();
  return { ...jose, jwtVerify: vi.fn(jose.jwtVerify) };
});

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(() => t?.close());

/** How many times jose was asked to verify exactly this token. */
const verificationsOf = (token: string) => vi.mocked(jwtVerify).mock.calls.filter(([presented]) => presented === token).length;

const meId = (token: string) => t.gql(ME_ID, {}, { token });

describe('the verified-token cache, through GraphQL', () => {
  it('verifies a token with jose once, however many requests carry it', async () => {
    const user = await registerUser(t);
    const other = await registerUser(t);
    for (let i = 0; i < 5; i++) {
      expect((await meId(user.accessToken)).data?.me).toEqual({ id: user.userId });
      expect((await meId(other.accessToken)).data?.me).toEqual({ id: other.userId });
    }
    expect(verificationsOf(user.accessToken)).toBe(1);
    expect(verificationsOf(other.accessToken)).toBe(1);
  });

  it('never answers a forged or altered token from the cache, once the genuine one is in it', async () => {
    const user = await registerUser(t);
    const victim = await registerUser(t);
    expect((await meId(user.accessToken)).data?.me).toEqual({ id: user.userId });
    const [header, payload, signature] = user.accessToken.split('.');
    const flipped = `${signature!.slice(0, -2)}${signature!.at(-2) === 'A' ? 'B' : 'A'}${signature!.at(-1)}`;
    const forgeries = [
      tamperClaims(user.accessToken, { sub: victim.userId }), // another subject, the genuine signature
      `${header}.${payload}.${flipped}`, // the genuine claims, a signature off by one character
      `${header}.${payload}.`, // the genuine claims, no signature
      unsignedToken(claimsOf(user.accessToken)), // alg none
      await mint({ claims: claimsOf(user.accessToken), secret: new TextEncoder().encode('x'.repeat(64)) }), // another key
    ];
    // Twice each: a refused token is not remembered as anything either.
    for (const forged of forgeries) {
      expectUnauthenticated(await meId(forged), 'me');
      expectUnauthenticated(await meId(forged), 'me');
    }
    expect(verificationsOf(user.accessToken)).toBe(1);
    expect((await meId(user.accessToken)).data?.me).toEqual({ id: user.userId });
  });
});
