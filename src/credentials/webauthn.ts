import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type AuthenticatorTransport,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { decodeClientDataJSON, isoBase64URL } from '@simplewebauthn/server/helpers';
import { ConfigError, type Config } from '../config.js';
import type { PasskeyRow } from '../db/schema.js';
import { WEBAUTHN_CHALLENGE_TTL_SECONDS } from './webauthn-challenges.js';

/** The WebAuthn relying party: the domain passkeys are bound to, its name, the origins allowed to use them. */
export interface RelyingParty {
  id: string;
  name: string;
  origins: string[];
}

/**
 * RP_ID, RP_NAME and RP_ORIGINS; outside production, what is unset comes from PUBLIC_URL (its
 * host and its origin). Production requires both: a guessed relying party there would bind
 * every passkey to a name the site may not have.
 */
export function relyingPartyOf(config: Pick<Config, 'production' | 'passkeys'>, publicUrl: string): RelyingParty {
  const { rpId, rpName, origins } = config.passkeys;
  if (config.production) {
    const missing = [rpId === undefined ? 'RP_ID' : null, origins === undefined ? 'RP_ORIGINS' : null].filter(Boolean);
    if (missing.length > 0) {
      throw new ConfigError(
        `${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} required in production (e.g. RP_ID=example.com ` +
          'RP_ORIGINS=https://example.com): passkeys are bound to that domain and usable only from those origins.',
      );
    }
  }
  const url = new URL(publicUrl);
  return { id: rpId ?? url.hostname.replace(/^\[|\]$/g, ''), name: rpName, origins: origins ?? [url.origin] };
}

/** Why a WebAuthn response was refused; `user_not_verified`: a genuine assertion, but user verification was required and not done. */
export type WebauthnRefusal = 'malformed' | 'unverified' | 'counter' | 'user_not_verified';

/** A response as the JSON scalar delivered it: its challenge, or null when it is not a WebAuthn response at all. */
export function challengeOf(response: unknown): string | null {
  try {
    const clientDataJSON = (response as { response?: { clientDataJSON?: unknown } } | null)?.response?.clientDataJSON;
    if (typeof clientDataJSON !== 'string') return null;
    const challenge = decodeClientDataJSON(clientDataJSON).challenge;
    return typeof challenge === 'string' && challenge.length > 0 ? challenge : null;
  } catch {
    return null;
  }
}

/** The credential id an assertion names (base64url), or null. */
export function credentialIdOf(response: unknown): string | null {
  const id = (response as { id?: unknown } | null)?.id;
  return typeof id === 'string' && isoBase64URL.isBase64URL(id) && id.length > 0 ? id : null;
}

/** The WebAuthn user handle of an account: its uuid's 16 bytes (no personal data), as base64url. */
export function userHandleOf(userId: string): string {
  return isoBase64URL.fromBuffer(new Uint8Array(Buffer.from(userId.replaceAll('-', ''), 'hex')));
}

/** The user handle an assertion carries (a discoverable credential's), or null. */
export function userHandleIn(response: unknown): string | null {
  const handle = (response as { response?: { userHandle?: unknown } } | null)?.response?.userHandle;
  return typeof handle === 'string' && handle !== '' ? handle : null;
}

const TIMEOUT_MS = WEBAUTHN_CHALLENGE_TTL_SECONDS * 1000;

/** The ceremonies of @simplewebauthn/server, for one relying party; user verification always required. */
export function createWebauthn(rp: RelyingParty) {
  const toDescriptor = (passkey: Pick<PasskeyRow, 'credentialId' | 'transports'>) => ({
    id: passkey.credentialId,
    transports: passkey.transports as AuthenticatorTransport[],
  });

  return {
    relyingParty: rp,

    /** Creation options: a discoverable credential, user verification required, no attestation; `existing` excluded. */
    registrationOptions(user: { id: string; email: string; name: string | null }, existing: PasskeyRow[]): Promise<PublicKeyCredentialCreationOptionsJSON> {
      return generateRegistrationOptions({
        rpName: rp.name,
        rpID: rp.id,
        userName: user.email,
        userDisplayName: user.name ?? user.email,
        // The user handle is the account id (no personal data; a discoverable sign-in returns it).
        userID: isoBase64URL.toBuffer(userHandleOf(user.id)),
        attestationType: 'none',
        timeout: TIMEOUT_MS,
        excludeCredentials: existing.map(toDescriptor),
        authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
      });
    },

    /** Verifies a registration response to `challenge` (user verification required); the credential to store, or why not. */
    async verifyRegistration(response: unknown, challenge: string) {
      try {
        const verified = await verifyRegistrationResponse({
          response: response as RegistrationResponseJSON,
          expectedChallenge: challenge,
          expectedOrigin: rp.origins,
          expectedRPID: rp.id,
          requireUserVerification: true,
        });
        if (!verified.verified) return { ok: false, reason: 'unverified' } as const;
        const info = verified.registrationInfo;
        return {
          ok: true,
          credentialId: info.credential.id,
          publicKey: isoBase64URL.fromBuffer(info.credential.publicKey),
          counter: info.credential.counter,
          transports: info.credential.transports ?? [],
          backupEligible: info.credentialDeviceType === 'multiDevice',
          backedUp: info.credentialBackedUp,
        } as const;
      } catch {
        // The library throws for every refusal (wrong origin, RP ID, challenge, flags, format).
        return { ok: false, reason: 'unverified' } as const;
      }
    },

    /** Request options: for `allow` (ids only), or discoverable when empty; user verification `required` or `preferred`. */
    requestOptions(allow: string[], userVerification: 'required' | 'preferred'): Promise<PublicKeyCredentialRequestOptionsJSON> {
      // Ids only, no transports: a list for an email without passkeys (decoys) must look like any other.
      return generateAuthenticationOptions({ rpID: rp.id, timeout: TIMEOUT_MS, userVerification, allowCredentials: allow.map((id) => ({ id })) });
    },

    /**
     * Verifies an assertion by `passkey` to `challenge`. A counter that does not move forward is
     * refused (a cloned authenticator), unless it stays 0 (an authenticator without a counter);
     * with `requireUserVerification`, so is an assertion without user verification.
     */
    async verifyAssertion(
      response: unknown,
      challenge: string,
      passkey: PasskeyRow,
      options: { requireUserVerification: boolean },
    ): Promise<{ ok: true; counter: number; userVerified: boolean; backedUp: boolean } | { ok: false; reason: WebauthnRefusal }> {
      try {
        const verified = await verifyAuthenticationResponse({
          response: response as AuthenticationResponseJSON,
          expectedChallenge: challenge,
          expectedOrigin: rp.origins,
          expectedRPID: rp.id,
          credential: {
            id: passkey.credentialId,
            publicKey: isoBase64URL.toBuffer(passkey.publicKey),
            counter: passkey.counter,
            transports: passkey.transports as AuthenticatorTransport[],
          },
          // Checked below instead: the library throws alike for every refusal, and checks the flag
          // before the signature, so only here is a UV-less assertion known to be genuine.
          requireUserVerification: false,
        });
        if (!verified.verified) return { ok: false, reason: 'unverified' } as const;
        const info = verified.authenticationInfo;
        if (options.requireUserVerification && !info.userVerified) return { ok: false, reason: 'user_not_verified' } as const;
        return { ok: true, counter: info.newCounter, userVerified: info.userVerified, backedUp: info.credentialBackedUp } as const;
      } catch (err) {
        const counter = err instanceof Error && /counter/i.test(err.message);
        return { ok: false, reason: counter ? 'counter' : 'unverified' } as const;
      }
    },
  };
}

export type Webauthn = ReturnType<typeof createWebauthn>;
