import { availableParallelism } from 'node:os';
import argon2 from 'argon2';
import { WorkGate, type WorkGateOptions } from '../abuse/work-gate.js';
import { RateLimitedError } from '../errors.js';

/** OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane (about 24 ms here). */
export const ARGON2_PARAMS = {
  type: argon2.argon2id,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
} as const;

// argon2 work is bounded per process: each hash holds 19 MiB and a core for ~25 ms, so an
// unbounded burst would exhaust memory and starve every other request.
const gate = new WorkGate({ maxConcurrency: availableParallelism() * 2, queueLimit: 64, queueTimeoutMs: 2000 });

/** Sets how much argon2 work may run and wait at once (from configuration, at start-up). */
export function limitPasswordWork(options: WorkGateOptions): void {
  gate.configure(options);
}

/** Hashes a password with argon2id at the current parameters. */
export function hashPassword(password: string): Promise<string> {
  return gate.run(() => argon2.hash(password, ARGON2_PARAMS));
}

export interface PasswordCheck {
  ok: boolean;
  /** True when the hash was made with other parameters and should be replaced. */
  needsRehash: boolean;
}

/** Verifies a password against a stored hash; the password is compared exactly as given. */
export async function verifyPassword(hash: string, password: string): Promise<PasswordCheck> {
  let ok: boolean;
  try {
    ok = await gate.run(() => argon2.verify(hash, password));
  } catch (err) {
    if (err instanceof RateLimitedError) throw err;
    // A malformed stored hash never matches; it is not a reason to fail the request.
    return { ok: false, needsRehash: false };
  }
  // needsRehash compares version and m/t/p but not the variant: an argon2i or argon2d hash
  // with the same parameters must be upgraded too.
  const outdated = !hash.startsWith('$argon2id$') || argon2.needsRehash(hash, ARGON2_PARAMS);
  return { ok, needsRehash: ok && outdated };
}

let dummyHash: Promise<string> | undefined;

/** Makes the dummy hash ahead of the first unknown-email login (called at start-up). */
export function prepareDummyHash(): Promise<void> {
  return verifyAgainstDummy('').catch(() => {});
}

/**
 * Spends the same work as a real verification, so an unknown email answers in the same time
 * as a wrong password. The dummy hash itself is made outside the work gate and is never
 * cached as a failure: an overload at the wrong moment must not make every later
 * unknown-email login answer differently from a wrong password.
 */
export async function verifyAgainstDummy(password: string): Promise<void> {
  dummyHash ??= argon2.hash(`dummy-${Math.random()}`, ARGON2_PARAMS).catch((err: unknown) => {
    dummyHash = undefined;
    throw err;
  });
  await verifyPassword(await dummyHash, password);
}
