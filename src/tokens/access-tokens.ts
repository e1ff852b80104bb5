import { randomUUID } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import { LRUCache } from 'lru-cache';
import { z } from 'zod';
import { sha256Digest } from '../crypto/digest.js';
import { epochSeconds, fromEpochSeconds } from '../time.js';
import type { KeyRing } from './key-ring.js';

/** The claims of a verified access token that the server relies on. */
export interface AccessClaims {
  sub: string;
  sid: string;
  jti: string;
  iat: number;
  exp: number;
  roles: string[];
  /** How the session was authenticated (RFC 8176 `amr` values), e.g. `["pwd"]`, `["pwd","otp"]`. */
  amr: string[];
  /**
   * When the session was last authenticated or re-authenticated (epoch seconds). Absent only
   * from tokens signed before sessions recorded it: those count as authenticated long ago.
   */
  auth_time?: number | undefined;
}

/** Who an access token is for, and how its session was authenticated. */
export interface AccessSubject {
  userId: string;
  sessionId: string;
  roles: string[];
  amr: string[];
  authTime: Date;
}

/** Why a presented access token was refused; kept for logs, never shown to the client. */
export type AccessTokenFailure = 'malformed' | 'oversized' | 'expired' | 'bad_signature' | 'bad_claims' | 'unknown_key';

/**
 * A verdict on a presented token. An expired token of ours (its signature verified by the ring,
 * every other check passed, only `exp` past) keeps its claims: they prove which session the
 * token was issued in (logout ends it), never a right to be served.
 */
export type AccessTokenCheck =
  | { ok: true; claims: AccessClaims }
  | { ok: false; reason: 'expired'; claims: AccessClaims }
  | { ok: false; reason: Exclude<AccessTokenFailure, 'expired'> };

export interface IssuedAccessToken {
  token: string;
  jti: string;
  expiresAt: Date;
}

export interface AccessTokenCodec {
  sign(subject: AccessSubject, now: Date): Promise<IssuedAccessToken>;
  verify(token: string, now: Date): Promise<AccessTokenCheck>;
}

/** How many verified tokens a codec remembers (a few hundred bytes each). */
export const VERIFIED_CACHE_SIZE = 10_000;

/** A JWT of ours is a few hundred bytes; anything far larger is refused before parsing. */
export const MAX_ACCESS_TOKEN_LENGTH = 4096;
const TOKEN_TYPE = 'at+jwt';

const claimsShape = z.object({
  sub: z.uuid(),
  sid: z.uuid(),
  jti: z.string().min(1).max(200),
  iat: z.number().int(),
  exp: z.number().int(),
  roles: z.array(z.string()).default([]),
  amr: z.array(z.string()).default([]),
  auth_time: z.number().int().optional(),
});

function failureOf(err: unknown): Exclude<AccessTokenCheck, { ok: true }> {
  // jose checks `exp` last: after the signature, typ, issuer, audience and required claims.
  if (err instanceof errors.JWTExpired && err.claim === 'exp') {
    const claims = claimsShape.safeParse(err.payload);
    return claims.success ? { ok: false, reason: 'expired', claims: claims.data } : { ok: false, reason: 'bad_claims' };
  }
  return { ok: false, reason: reasonOf(err) };
}

function reasonOf(err: unknown): Exclude<AccessTokenFailure, 'expired'> {
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (err instanceof errors.JWTClaimValidationFailed) return 'bad_claims';
  if (err instanceof errors.JWKSNoMatchingKey) return 'unknown_key';
  // Algorithm not allowed, unparsable segments, wrong key type: all malformed to us.
  return 'malformed';
}

/**
 * Signs and verifies access tokens with pinned issuer, audience and type. The key comes from the
 * ring by the header's `kid` and must be of the header's `alg` (only algorithms of keys in the
 * ring are allowed); `jku`, `jwk`, `x5u` and `x5c` are never looked at, and a `crit` header is
 * refused (whatever it names: we use no extension).
 */
export function createAccessTokenCodec(
  ring: KeyRing,
  options: { issuer: string; audience: string; ttlSeconds: number; verifiedCacheSize?: number },
): AccessTokenCodec {
  // Tokens already verified, by a digest of the whole token (a forged or altered token has
  // another): not verified again until they expire, while their key is still in the ring.
  const verified = new LRUCache<string, { claims: AccessClaims; header: { kid?: string; alg: string } }>({
    max: options.verifiedCacheSize ?? VERIFIED_CACHE_SIZE,
  });
  const keyOf = (header: { kid?: string; alg?: string; crit?: string[] }) => {
    // jose understands one extension (b64); we use none, so any `crit` is refused.
    if ('crit' in header) throw new errors.JOSENotSupported('crit is not accepted');
    const key = ring.verifier(header);
    if (!key) throw new errors.JWKSNoMatchingKey();
    return key;
  };
  const verifyOptions = {
    issuer: options.issuer,
    audience: options.audience,
    typ: TOKEN_TYPE,
    requiredClaims: ['exp', 'iat', 'jti', 'sub', 'sid'],
  };
  return {
    async sign({ userId, sessionId, roles, amr, authTime }, now) {
      const jti = randomUUID();
      const iat = epochSeconds(now);
      const exp = iat + options.ttlSeconds;
      // A revoked signing key leaves the ring at once; its replacement comes with the reload.
      const signer = ring.signer(now) ?? (await ring.loaded(), ring.signer(now));
      if (!signer) throw new Error('the key set has no key to sign with');
      const token = await new SignJWT({ sid: sessionId, roles, amr, auth_time: epochSeconds(authTime) })
        .setProtectedHeader({ alg: signer.algorithm, typ: TOKEN_TYPE, kid: signer.kid })
        .setIssuer(options.issuer)
        .setAudience(options.audience)
        .setSubject(userId)
        .setJti(jti)
        .setIssuedAt(iat)
        .setExpirationTime(exp)
        .sign(signer.key);
      return { token, jti, expiresAt: fromEpochSeconds(exp) };
    },
    async verify(token, now) {
      if (token.length > MAX_ACCESS_TOKEN_LENGTH) return { ok: false, reason: 'oversized' };
      const digest = sha256Digest(token, 'base64url');
      const known = verified.get(digest);
      if (known) {
        if (known.claims.exp > epochSeconds(now) && ring.holds(known.header)) return { ok: true, claims: known.claims };
        verified.delete(digest); // expired, or its key retired: jose gives the verdict again
      }
      try {
        const { payload, protectedHeader } = await jwtVerify(token, keyOf, {
          ...verifyOptions,
          algorithms: ring.algorithms(),
          currentDate: now,
        });
        const claims = claimsShape.safeParse(payload);
        if (!claims.success) return { ok: false, reason: 'bad_claims' };
        verified.set(digest, { claims: claims.data, header: { kid: protectedHeader.kid, alg: protectedHeader.alg } });
        return { ok: true, claims: claims.data };
      } catch (err) {
        return failureOf(err);
      }
    },
  };
}
