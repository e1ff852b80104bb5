/**
 * A software WebAuthn authenticator, written from the spec (WebAuthn Level 3, sections 6.1 and
 * 6.5): a P-256 key per credential, clientDataJSON, authenticator data (rpIdHash, flags UP/UV/
 * BE/BS/AT, a signature counter, attested credential data with the COSE key), attestation
 * "none", and assertions signed with ES256 over authenticatorData || SHA-256(clientDataJSON).
 * Its answers are the JSON objects @simplewebauthn/browser hands to a server. Each ceremony can
 * be bent (origin, RP ID, challenge, flags, counter, a broken signature) to play an attacker.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isoBase64URL, isoCBOR } from '@simplewebauthn/server/helpers';

const FLAG = { UP: 0x01, UV: 0x04, BE: 0x08, BS: 0x10, AT: 0x40 } as const;

/** How one ceremony departs from an honest one. */
export interface Bend {
  origin?: string;
  rpId?: string;
  challenge?: string;
  /** User verification performed (default true). */
  userVerified?: boolean;
  /** The counter to report instead of the credential's next one. */
  counter?: number;
  /** Flip a bit of the signature. */
  breakSignature?: boolean;
}

export interface SoftCredential {
  id: string;
  key: KeyObject;
  publicJwk: { x: string; y: string };
  userHandle: string | null;
  /** The last counter reported; `counting: false` reports 0 every time (authenticators without a counter). */
  counter: number;
  counting: boolean;
}

const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest();
const b64url = (bytes: Uint8Array) => isoBase64URL.fromBuffer(new Uint8Array(bytes));

function clientData(type: 'webauthn.create' | 'webauthn.get', challenge: string, origin: string): Buffer {
  return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }), 'utf8');
}

function authenticatorData(rpId: string, flags: number, counter: number, attested?: Buffer): Buffer {
  const count = Buffer.alloc(4);
  count.writeUInt32BE(counter);
  return Buffer.concat([sha256(rpId), Buffer.from([flags]), count, ...(attested ? [attested] : [])]);
}

/** A software authenticator for one origin (its default RP ID is the origin's host). */
export class SoftAuthenticator {
  readonly credentials: SoftCredential[] = [];
  constructor(readonly origin: string) {}

  private flags(bend: Bend, extra = 0) {
    return FLAG.UP | (bend.userVerified === false ? 0 : FLAG.UV) | FLAG.BE | FLAG.BS | extra;
  }

  /** navigator.credentials.create(): answers creation options with a new credential (attestation "none"). */
  create(options: any, bend: Bend = {}, settings: { counting?: boolean } = {}): any {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' }) as { x: string; y: string };
    const id = randomBytes(32);
    const cose = isoCBOR.encode(
      new Map<number, number | Uint8Array>([
        [1, 2], // kty: EC2
        [3, -7], // alg: ES256
        [-1, 1], // crv: P-256
        [-2, isoBase64URL.toBuffer(jwk.x)],
        [-3, isoBase64URL.toBuffer(jwk.y)],
      ]),
    );
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(id.length);
    const attested = Buffer.concat([Buffer.alloc(16), idLength, id, Buffer.from(cose)]);
    const counting = settings.counting ?? true;
    const authData = authenticatorData(bend.rpId ?? options.rp?.id ?? new URL(this.origin).hostname, this.flags(bend, FLAG.AT), 0, attested);
    const attestationObject = isoCBOR.encode(new Map<string, unknown>([['fmt', 'none'], ['attStmt', new Map()], ['authData', new Uint8Array(authData)]]) as any);
    const credential: SoftCredential = { id: b64url(id), key: privateKey, publicJwk: jwk, userHandle: options.user?.id ?? null, counter: 0, counting };
    this.credentials.push(credential);
    return {
      id: credential.id,
      rawId: credential.id,
      type: 'public-key',
      authenticatorAttachment: 'platform',
      clientExtensionResults: {},
      response: {
        clientDataJSON: b64url(clientData('webauthn.create', bend.challenge ?? options.challenge, bend.origin ?? this.origin)),
        attestationObject: b64url(attestationObject),
        transports: ['internal', 'hybrid'],
      },
    };
  }

  /**
   * navigator.credentials.get(): an assertion by `credential` (default: the first the options
   * allow, else the first this authenticator holds: a discoverable credential).
   */
  get(options: any, bend: Bend = {}, credential?: SoftCredential): any {
    const allowed: string[] = (options.allowCredentials ?? []).map((c: { id: string }) => c.id);
    const chosen = credential ?? this.credentials.find((c) => allowed.length === 0 || allowed.includes(c.id));
    if (!chosen) throw new Error('no credential of this authenticator is allowed by the options');
    if (bend.counter === undefined && chosen.counting) chosen.counter += 1;
    const counter = bend.counter ?? chosen.counter;
    const data = clientData('webauthn.get', bend.challenge ?? options.challenge, bend.origin ?? this.origin);
    const authData = authenticatorData(bend.rpId ?? options.rpId ?? new URL(this.origin).hostname, this.flags(bend), counter);
    const signature = sign('sha256', Buffer.concat([authData, sha256(data)]), chosen.key);
    if (bend.breakSignature) signature[signature.length - 1]! ^= 0x01;
    return {
      id: chosen.id,
      rawId: chosen.id,
      type: 'public-key',
      authenticatorAttachment: 'platform',
      clientExtensionResults: {},
      response: {
        clientDataJSON: b64url(data),
        authenticatorData: b64url(authData),
        signature: b64url(signature),
        ...(chosen.userHandle ? { userHandle: chosen.userHandle } : {}),
      },
    };
  }
}
