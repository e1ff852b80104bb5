import { randomUUID } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
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
}

/** Why a presented access token was refused; kept for logs, never shown to the client. */
export type AccessTokenFailure = 'malformed' | 'oversized' | 'expired' | 'bad_signature' | 'bad_claims' | 'unknown_key';

export type AccessTokenCheck =
  | { ok: true; claims: AccessClaims }
  | { ok: false; reason: AccessTokenFailure };

export interface IssuedAccessToken {
  token: string;
  jti: string;
  expiresAt: Date;
}

export interface AccessTokenCodec {
  sign(subject: { userId: string; sessionId: string; roles: string[] }, now: Date): Promise<IssuedAccessToken>;
  verify(token: string, now: Date): Promise<AccessTokenCheck>;
}

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
});

function failureOf(err: unknown): AccessTokenFailure {
  if (err instanceof errors.JWTExpired) return 'expired';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (err instanceof errors.JWTClaimValidationFailed) return 'bad_claims';
  if (err instanceof errors.JWKSNoMatchingKey) return 'unknown_key';
  // Algorithm not allowed, unparsable segments, wrong key type: all malformed to us.
  return 'malformed';
}

/**
 * Signs and verifies access tokens with pinned issuer, audience and type. The key comes from the
 * ring by the header's `kid` and must be of the header's `alg` (only algorithms of keys in the
 * ring are allowed); `jku`, `jwk`, `x5u` and `x5c` are never looked at, and jose refuses any
 * `crit` extension it does not know, which is all of them.
 */
export function createAccessTokenCodec(
  ring: KeyRing,
  options: { issuer: string; audience: string; ttlSeconds: number },
): AccessTokenCodec {
  const keyOf = (header: { kid?: string; alg?: string }) => {
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
    async sign({ userId, sessionId, roles }, now) {
      const jti = randomUUID();
      const iat = epochSeconds(now);
      const exp = iat + options.ttlSeconds;
      const signer = ring.signer(now);
      const token = await new SignJWT({ sid: sessionId, roles })
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
      try {
        const { payload } = await jwtVerify(token, keyOf, { ...verifyOptions, algorithms: ring.algorithms(), currentDate: now });
        const claims = claimsShape.safeParse(payload);
        return claims.success ? { ok: true, claims: claims.data } : { ok: false, reason: 'bad_claims' };
      } catch (err) {
        return { ok: false, reason: failureOf(err) };
      }
    },
  };
}
