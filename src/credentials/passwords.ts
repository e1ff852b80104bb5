import argon2 from 'argon2';
import { RateLimitedError } from '../errors.js';

/** OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane (about 24 ms here). */
export const ARGON2_PARAMS = {
  type: argon2.argon2id,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
} as const;

/**
 * Where argon2 work waits its turn: each hash holds 19 MiB and a core for ~25 ms, so an
 * unbounded burst would exhaust memory and starve every other request. Refuses with
 * RateLimitedError when too much is waiting (abuse/work-gate.ts).
 */
export interface PasswordWorkGate {
  run<T>(job: () => Promise<T>): Promise<T>;
}

export interface PasswordCheck {
  ok: boolean;
  /** True when the hash was made with other parameters and should be replaced. */
  needsRehash: boolean;
}

/** Hashing and verifying passwords, all argon2 work through one gate. */
export interface Passwords {
  /** Hashes a password with argon2id at the current parameters. */
  hash(password: string): Promise<string>;
  /**
   * Verifies a password against a stored hash; the password is compared exactly as given. An
   * account without a password (null: made through social sign-in) matches nothing, after the
   * same work as a real check, so it answers like a wrong password.
   */
  verify(hash: string | null, password: string): Promise<PasswordCheck>;
  /**
   * Spends the same work as a real verification, so an unknown email answers in the same time
   * as a wrong password.
   */
  verifyAgainstDummy(password: string): Promise<void>;
  /** Makes the dummy hash ahead of the first unknown-email login (called at start-up). */
  prepareDummy(): Promise<void>;
}

/** The password service of one app; `gate` bounds its argon2 work. */
export function createPasswords(gate: PasswordWorkGate): Passwords {
  let dummyHash: Promise<string> | undefined;

  const verify = async (hash: string | null, password: string): Promise<PasswordCheck> => {
    if (hash === null) {
      await verifyAgainstDummy(password);
      return { ok: false, needsRehash: false };
    }
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
  };

  // The dummy hash itself is made outside the gate and is never cached as a failure: an
  // overload at the wrong moment must not make every later unknown-email login answer
  // differently from a wrong password.
  const verifyAgainstDummy = async (password: string): Promise<void> => {
    dummyHash ??= argon2.hash(`dummy-${Math.random()}`, ARGON2_PARAMS).catch((err: unknown) => {
      dummyHash = undefined;
      throw err;
    });
    await verify(await dummyHash, password);
  };

  return {
    hash: (password) => gate.run(() => argon2.hash(password, ARGON2_PARAMS)),
    verify,
    verifyAgainstDummy,
    prepareDummy: () => verifyAgainstDummy('').catch(() => {}),
  };
}
