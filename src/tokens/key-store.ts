import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { eq, inArray, sql } from 'drizzle-orm';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { JwtAlgorithm } from '../config.js';
import type { Database, Tx } from '../db/client.js';
import { signingKeys, type SigningKeyRow } from '../db/schema.js';
import type { KeyEncryption } from './key-encryption.js';
import { dueSteps, prePublicationMs, retentionMs, type KeySchedulePolicy, type KeyStep, type ScheduledKey } from './key-schedule.js';

/** The channel every instance listens on for key-set changes; the payload names a revoked kid, if any. */
export const KEY_CHANNEL = 'authgraph_signing_keys';

/** The states of keys that are published and accept tokens. */
const PUBLISHED_STATES: readonly SigningKeyRow['state'][] = ['next', 'current', 'retired'];

/** One transaction-scoped advisory lock serializes every change to the key set, across instances. */
const KEY_LOCK = sql`select pg_advisory_xact_lock(hashtext('authgraph.signing_keys'))`;

/** The JWK members that would let a holder sign (RSA and EC/OKP private parts, symmetric key). */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

function publicMembers(jwk: JWK): JWK {
  const copy: Record<string, unknown> = { ...jwk };
  for (const member of PRIVATE_JWK_MEMBERS) delete copy[member];
  return copy as JWK;
}

/** What a step or a command did, for the caller to report. */
export interface KeyChange {
  kind: 'created' | 'activated' | 'retired' | 'removed' | 'revoked';
  kid: string;
}

const toScheduled = (row: SigningKeyRow): ScheduledKey => ({
  kid: row.kid,
  algorithm: row.algorithm,
  state: row.state,
  source: row.source,
  activatesAt: row.activatesAt.getTime(),
  retiredAt: row.retiredAt?.getTime() ?? null,
  removeAt: row.removeAt?.getTime() ?? null,
});

/** A key pair's stored form: kid (RFC 7638 thumbprint), public JWK, private key sealed under the KEK. */
export async function storableKey(
  pair: { publicKey: CryptoKey; privateKey: CryptoKey },
  algorithm: JwtAlgorithm,
  encryption: KeyEncryption,
) {
  const jwk = publicMembers(await exportJWK(pair.publicKey));
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  const pkcs8 = Buffer.from(await exportPKCS8(pair.privateKey), 'utf8');
  return { kid, algorithm, publicJwk: { ...jwk, kid, alg: algorithm, use: 'sig' }, privateKey: encryption.seal(pkcs8, kid) };
}

function generateStorableKey(algorithm: JwtAlgorithm, encryption: KeyEncryption) {
  return generateKeyPair(algorithm, { extractable: true, ...(algorithm.startsWith('RS') ? { modulusLength: 2048 } : {}) }).then(
    (pair) => storableKey(pair, algorithm, encryption),
  );
}

/** The signing keys' table: every change under one advisory lock, audited and announced in its transaction. */
export function createKeyStore(deps: {
  db: Database;
  clock: Clock;
  audit: AuditLog;
  encryption: KeyEncryption;
  policy: KeySchedulePolicy & { algorithm: JwtAlgorithm };
}) {
  const { db, clock, audit, encryption, policy } = deps;

  const record = (tx: Tx, change: KeyChange, algorithm: string) =>
    audit.record({ type: `signing_key_${change.kind}`, detail: { kid: change.kid, algorithm } }, tx);

  /** Runs `change` holding the key-set lock; announces the result on commit. */
  const locked = <T>(change: (tx: Tx, rows: SigningKeyRow[]) => Promise<{ result: T; changes: KeyChange[]; revoked?: string }>) =>
    db.transaction(async (tx) => {
      await tx.execute(KEY_LOCK);
      const rows = await tx.select().from(signingKeys);
      const outcome = await change(tx, rows);
      if (outcome.changes.length > 0) {
        await tx.execute(sql`select pg_notify(${KEY_CHANNEL}, ${outcome.revoked ?? ''})`);
      }
      return outcome;
    });

  async function insertKey(tx: Tx, state: 'current' | 'next', activatesAt: Date, algorithm: JwtAlgorithm): Promise<KeyChange> {
    const key = await generateStorableKey(algorithm, encryption);
    await tx.insert(signingKeys).values({ ...key, state, source: 'generated', createdAt: clock.now(), activatesAt });
    const change = { kind: 'created', kid: key.kid } as const;
    await record(tx, change, algorithm);
    return change;
  }

  async function retireRow(tx: Tx, row: SigningKeyRow, now: Date): Promise<KeyChange> {
    const removeAt = new Date(now.getTime() + retentionMs(policy));
    await tx.update(signingKeys).set({ state: 'retired', retiredAt: now, removeAt }).where(eq(signingKeys.kid, row.kid));
    const change = { kind: 'retired', kid: row.kid } as const;
    await record(tx, change, row.algorithm);
    return change;
  }

  async function activated(tx: Tx, kid: string, algorithm: string): Promise<KeyChange> {
    const change = { kind: 'activated', kid } as const;
    await record(tx, change, algorithm);
    return change;
  }

  async function apply(tx: Tx, rows: SigningKeyRow[], steps: KeyStep[], now: Date): Promise<KeyChange[]> {
    const changes: KeyChange[] = [];
    const byKid = new Map(rows.map((row) => [row.kid, row]));
    for (const step of steps) {
      if (step.kind === 'create') {
        const created = await insertKey(tx, step.state, new Date(step.activatesAt), policy.algorithm);
        changes.push(created);
        if (step.state === 'current') changes.push(await activated(tx, created.kid, policy.algorithm));
      } else if (step.kind === 'promote') {
        if (step.retiring) changes.push(await retireRow(tx, byKid.get(step.retiring)!, now));
        await tx.update(signingKeys).set({ state: 'current' }).where(eq(signingKeys.kid, step.kid));
        changes.push(await activated(tx, step.kid, byKid.get(step.kid)!.algorithm));
      } else {
        if (byKid.get(step.kid)!.source === 'environment') {
          // Kept, unpublished and without its private key, so that a start still given this
          // JWT_PRIVATE_KEY does not adopt it again (adoptEnvironmentKey) and undo the rotation.
          await tx.update(signingKeys).set({ state: 'removed', privateKey: null }).where(eq(signingKeys.kid, step.kid));
        } else {
          await tx.delete(signingKeys).where(eq(signingKeys.kid, step.kid));
        }
        const change = { kind: 'removed', kid: step.kid } as const;
        await record(tx, change, byKid.get(step.kid)!.algorithm);
        changes.push(change);
      }
    }
    return changes;
  }

  const live = (rows: SigningKeyRow[]) => rows.filter((row) => PUBLISHED_STATES.includes(row.state));

  /**
   * Before a command changes the set: the promotions and removals due now (a `next` key whose
   * time has come already signs on every instance), then the rows as they are.
   */
  async function settle(tx: Tx, rows: SigningKeyRow[], now: Date) {
    const due = dueSteps(live(rows).map(toScheduled), now.getTime(), policy).filter((step) => step.kind !== 'create');
    const changes = await apply(tx, rows, due, now);
    return { rows: changes.length > 0 ? await tx.select().from(signingKeys) : rows, changes };
  }

  return {
    /** The keys that are published (next, current, retired). */
    published: () => db.select().from(signingKeys).where(inArray(signingKeys.state, [...PUBLISHED_STATES])),

    /** Every key, revoked ones included, oldest first (for `keys list`). */
    all: () => db.select().from(signingKeys).orderBy(signingKeys.createdAt),

    /** Performs the steps due now (first key, pre-publication, promotion, removal). */
    step: () =>
      locked(async (tx, rows) => {
        const now = clock.now();
        const changes = await apply(tx, rows, dueSteps(live(rows).map(toScheduled), now.getTime(), policy), now);
        return { result: changes, changes };
      }).then((o) => o.result),

    /**
     * Schedules a new `next` key (replacing a waiting one), promoted after the pre-publication
     * wait; with `immediately`, it signs at once and the current key retires.
     */
    rotate: (immediately: boolean) =>
      locked(async (tx, found) => {
        const now = clock.now();
        const { rows, changes } = await settle(tx, found, now);
        // A waiting key may already sign on an instance whose clock runs ahead: it is retired
        // (published and accepted for the retention), never deleted.
        for (const waiting of rows.filter((row) => row.state === 'next')) changes.push(await retireRow(tx, waiting, now));
        const current = rows.find((row) => row.state === 'current');
        if (immediately) {
          if (current) changes.push(await retireRow(tx, current, now));
          const created = await insertKey(tx, 'current', now, policy.algorithm);
          changes.push(created, await activated(tx, created.kid, policy.algorithm));
          return { result: created.kid, changes };
        }
        const activatesAt = new Date(now.getTime() + prePublicationMs(policy));
        const created = await insertKey(tx, 'next', activatesAt, policy.algorithm);
        changes.push(created);
        return { result: created.kid, changes };
      }).then((o) => o.result),

    /**
     * A compromised key: no longer published nor accepted (its tokens are refused), its private
     * key erased. Retiring the key that signs promotes a fresh one at once.
     * Returns false when no published key has that kid.
     */
    revoke: (kid: string) =>
      locked(async (tx, rows) => {
        const row = live(rows).find((r) => r.kid === kid);
        if (!row) return { result: false, changes: [] };
        const now = clock.now();
        await tx.update(signingKeys).set({ state: 'revoked', privateKey: null, retiredAt: now, removeAt: null }).where(eq(signingKeys.kid, kid));
        const changes: KeyChange[] = [{ kind: 'revoked', kid }];
        await record(tx, changes[0]!, row.algorithm);
        if (row.state === 'current') {
          const next = rows.find((r) => r.state === 'next');
          if (next) {
            await tx.update(signingKeys).set({ state: 'current', activatesAt: now }).where(eq(signingKeys.kid, next.kid));
            changes.push(await activated(tx, next.kid, next.algorithm));
          } else {
            const created = await insertKey(tx, 'current', now, policy.algorithm);
            changes.push(created, await activated(tx, created.kid, policy.algorithm));
          }
        }
        return { result: true, changes, revoked: kid };
      }).then((o) => o.result),

    /**
     * The key of JWT_PRIVATE_KEY: added to the set (kid = its thumbprint) and made to sign. A key
     * the operator rotated away from or revoked is not brought back. Returns its kid.
     */
    adoptEnvironmentKey: (key: Awaited<ReturnType<typeof storableKey>>) =>
      locked(async (tx, found) => {
        const existing = found.find((row) => row.kid === key.kid);
        if (existing) return { result: existing, changes: [] };
        const now = clock.now();
        const { rows, changes } = await settle(tx, found, now);
        const current = rows.find((row) => row.state === 'current');
        // On a set that already signs, it is published first, like any new key, and replaces a waiting one.
        for (const waiting of rows.filter((row) => row.state === 'next')) changes.push(await retireRow(tx, waiting, now));
        const state = current ? 'next' : 'current';
        const activatesAt = current ? new Date(now.getTime() + prePublicationMs(policy)) : now;
        await tx.insert(signingKeys).values({ ...key, state, source: 'environment', createdAt: now, activatesAt });
        const created = { kind: 'created', kid: key.kid } as const;
        await record(tx, created, key.algorithm);
        changes.push(created);
        if (!current) changes.push(await activated(tx, key.kid, key.algorithm));
        return { result: null, changes };
      }).then((o) => o.result),
  };
}

export type KeyStore = ReturnType<typeof createKeyStore>;
