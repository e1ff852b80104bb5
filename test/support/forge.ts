/**
 * Building access tokens the way an attacker would: unsigned, signed with the wrong key or
 * algorithm, tampered with, or signed with the app's real secret but with claims the server
 * must refuse (to prove its checks are more than a signature check).
 */
import { decodeJwt, decodeProtectedHeader, SignJWT, type JWTPayload } from 'jose';
import { expect } from 'vitest';
import { TEST_JWT_SECRET, type GraphQLResponse } from './app.js';

const encoder = new TextEncoder();

/** The test app's real HS256 secret as key material. */
export const REAL_SECRET = encoder.encode(TEST_JWT_SECRET);

/** The issuer and audience test apps use (the defaults). */
export const ISSUER = 'authgraph';
export const AUDIENCE = 'authgraph';

export const b64url = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** The header and claims of a token, without verifying it. */
export function inspect(token: string) {
  return { header: decodeProtectedHeader(token), claims: decodeJwt(token) };
}

/** A JWT with `alg: none` and an empty signature: `<header>.<payload>.` */
export function unsignedToken(claims: JWTPayload, header: Record<string, unknown> = { alg: 'none', typ: 'at+jwt' }): string {
  return `${b64url(header)}.${b64url(claims)}.`;
}

/** Replaces claims in the middle segment and keeps the original header and signature. */
export function tamperClaims(token: string, patch: Record<string, unknown>): string {
  const [header, payload, signature] = token.split('.');
  const claims = { ...JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')), ...patch };
  return `${header}.${b64url(claims)}.${signature}`;
}

export interface MintOptions {
  /** Claims to set; a value of `undefined` leaves the claim out. */
  claims: Record<string, unknown>;
  /** Protected header; `alg` defaults to HS256 and `typ` to at+jwt. */
  header?: Record<string, unknown>;
  /** Key material; defaults to the app's real secret. */
  secret?: Uint8Array;
}

/** Signs arbitrary claims with jose, by default with the app's real secret. */
export function mint({ claims, header = {}, secret = REAL_SECRET }: MintOptions): Promise<string> {
  const present = Object.fromEntries(Object.entries(claims).filter(([, value]) => value !== undefined));
  return new SignJWT(present as JWTPayload)
    .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', ...header } as { alg: string })
    .sign(secret);
}

/** The claims of a genuine token, to be re-signed with changes by `mint`. */
export function claimsOf(token: string): Record<string, unknown> {
  return { ...decodeJwt(token) };
}

/**
 * Asserts the answer of a field refused for want of a valid access token: HTTP 200, exactly
 * one error, on that field, with extensions.code UNAUTHENTICATED, and the field null (for a
 * non-null field such as `logout` the null reaches `data` itself).
 */
export function expectUnauthenticated(res: GraphQLResponse, field: string, options: { nullable?: boolean } = {}): void {
  // Compared as one object, so a failure shows the whole answer.
  expect({
    status: res.status,
    data: res.data,
    errors: res.errors?.map((error) => ({ path: error.path, code: error.extensions?.code })),
  }).toEqual({
    status: 200,
    data: options.nullable === false ? null : { [field]: null },
    errors: [{ path: [field], code: 'UNAUTHENTICATED' }],
  });
}
