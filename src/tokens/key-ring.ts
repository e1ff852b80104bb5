import { createHash } from 'node:crypto';
import { importJWK, importPKCS8, type CryptoKey, type JWK } from 'jose';
import type { JwtAlgorithm } from '../config.js';
import type { SigningKeyRow } from '../db/schema.js';
import type { KeyEncryption } from './key-encryption.js';
import { signingKeyAt } from './key-schedule.js';

/** A key that signs: its kid goes into every token's header. */
export interface Signer {
  kid: string;
  algorithm: JwtAlgorithm;
  key: CryptoKey;
}

/** The published key set, serialized once per change. */
export interface PublishedKeySet {
  body: string;
  /** A strong ETag of the body. */
  etag: string;
}

/**
 * The keys this instance signs and verifies with, held in memory: signing and verifying never
 * touch the database. An unknown kid is simply not found.
 */
export interface KeyRing {
  /** The key that signs at `now`; null while none does (a revoked one dropped, its replacement loading). */
  signer(now: Date): Signer | null;
  /** Settles when the reload in flight (if any) has been applied. */
  loaded(): Promise<void>;
  /** The verification key a token's header names, if the set holds it for that algorithm. */
  verifier(header: { kid?: string | undefined; alg?: string | undefined }): CryptoKey | null;
  /** Whether the set still holds the key a token's header names (a retired key is gone): no verification. */
  holds(header: { kid?: string | undefined; alg?: string | undefined }): boolean;
  /** The algorithms of the keys in the set: the only ones verification allows. */
  algorithms(): JwtAlgorithm[];
  /** The public keys to publish; null for a symmetric key, which is never published. */
  published(): PublishedKeySet | null;
}

/** Raised when a stored private key does not open under KEY_ENCRYPTION_KEY. */
export class KeyDecryptionError extends Error {
  override name = 'KeyDecryptionError';
}

interface Entry {
  row: Pick<SigningKeyRow, 'kid' | 'algorithm' | 'state' | 'activatesAt' | 'publicJwk'>;
  algorithm: JwtAlgorithm;
  publicKey: CryptoKey;
  privateKey: CryptoKey | null;
}

const ORDER = { current: 0, next: 1, retired: 2, revoked: 3, removed: 4 } as const;

/** A key ring over the stored key set; `load` replaces its contents (from KeyStore.published()). */
export function createStoredKeyRing(encryption: KeyEncryption) {
  let entries = new Map<string, Entry>();
  let publishedSet: PublishedKeySet = publish([]);

  function publish(list: Entry[]): PublishedKeySet {
    // The same set reads the same on every instance (one ETag behind a load balancer).
    const keys = [...list]
      .sort((a, b) => ORDER[a.row.state] - ORDER[b.row.state] || (a.row.kid < b.row.kid ? -1 : a.row.kid > b.row.kid ? 1 : 0))
      .map((e) => e.row.publicJwk);
    const body = JSON.stringify({ keys });
    return { body, etag: `"${createHash('sha256').update(body).digest('base64url')}"` };
  }

  async function entryOf(row: SigningKeyRow, previous: Entry | undefined): Promise<Entry> {
    const algorithm = row.algorithm as JwtAlgorithm;
    const publicKey = previous?.publicKey ?? ((await importJWK(row.publicJwk as JWK, algorithm)) as CryptoKey);
    let privateKey = previous?.privateKey ?? null;
    // Only keys that sign or are about to need their private half in memory.
    if (!privateKey && (row.state === 'current' || row.state === 'next') && row.privateKey) {
      const pkcs8 = encryption.open(row.privateKey, row.kid);
      if (!pkcs8) {
        throw new KeyDecryptionError(
          `KEY_ENCRYPTION_KEY does not decrypt the signing key ${row.kid} stored in the database: it is not the key ` +
            'the key set was encrypted with. Set the KEY_ENCRYPTION_KEY the keys were created under.',
        );
      }
      privateKey = await importPKCS8(pkcs8.toString('utf8'), algorithm);
    }
    return { row, algorithm, publicKey, privateKey };
  }

  const ring: KeyRing = {
    signer(now) {
      const entry = signingKeyAt(
        [...entries.values()].filter((e) => e.privateKey).map((e) => ({ ...e, state: e.row.state, activatesAt: e.row.activatesAt.getTime() })),
        now.getTime(),
      );
      return entry ? { kid: entry.row.kid, algorithm: entry.algorithm, key: entry.privateKey! } : null;
    },
    verifier({ kid, alg }) {
      if (kid === undefined) return null;
      const entry = entries.get(kid);
      return entry && entry.algorithm === alg ? entry.publicKey : null;
    },
    holds: (header) => ring.verifier(header) !== null,
    loaded: () => inFlight.then(() => {}),
    algorithms: () => [...new Set([...entries.values()].map((e) => e.algorithm))],
    published: () => publishedSet,
  };

  /** Kids announced as revoked: never loaded again, whatever an older read of the table says. */
  const revoked = new Set<string>();
  /** The read the ring holds now; a read that started earlier never replaces it. */
  let loadedRead = 0;
  let reads = 0;
  let inFlight: Promise<unknown> = Promise.resolve();

  return {
    ring,
    /**
     * Replaces the set with what `read` returns (the published rows); keys already imported are
     * reused. Reads overlap (a notification during a scheduled reload): the latest read wins.
     */
    load(read: () => Promise<SigningKeyRow[]>): Promise<void> {
      const readNumber = ++reads;
      const loading = (async () => {
        const rows = await read();
        const next = new Map<string, Entry>();
        for (const row of rows) {
          if (row.state === 'revoked' || row.state === 'removed' || revoked.has(row.kid)) continue;
          next.set(row.kid, await entryOf(row, entries.get(row.kid)));
        }
        if (readNumber < loadedRead) return;
        loadedRead = readNumber;
        entries = next;
        publishedSet = publish([...next.values()]);
      })();
      inFlight = Promise.allSettled([inFlight, loading]);
      return loading;
    },
    /** Drops a revoked key at once (announced by the instance that revoked it), before the reload. */
    drop(kid: string) {
      revoked.add(kid);
      if (!entries.delete(kid)) return;
      publishedSet = publish([...entries.values()]);
    },
  };
}

/** A ring of one symmetric key (HS*): verifies tokens without a kid too (issued before kids existed). */
export function symmetricKeyRing(key: CryptoKey, algorithm: JwtAlgorithm, kid: string): KeyRing {
  return {
    signer: () => ({ kid, algorithm, key }),
    loaded: async () => {},
    verifier: (header) => (header.alg === algorithm && (header.kid === undefined || header.kid === kid) ? key : null),
    holds: (header) => header.alg === algorithm && (header.kid === undefined || header.kid === kid),
    algorithms: () => [algorithm],
    published: () => null,
  };
}
