import type { Database, Tx } from './client.js';

/** A refusal thrown out of one transaction's callback (`owner` tells it from another's). */
class Refusal<R> extends Error {
  constructor(
    readonly owner: object,
    readonly reason: R,
  ) {
    super('transaction refused');
    this.name = new.target.name;
  }
}

/** Ends a refusable transaction's callback with a refusal (it throws): annotate the callback's parameter with it. */
export type Refuse<R> = (reason: R) => never;

/** What a refusable transaction ended with: the callback's value (committed), or the reason it refused (rolled back). */
export type Refusable<T, R> = { ok: true; value: T } | { ok: false; reason: R };

/**
 * Runs `work` in one transaction. `refuse(reason)` (it throws) rolls back everything `work` wrote
 * so far, so a credential spent in it (a code, a challenge) is spent only if all of it commits,
 * and answers the reason instead of a value. Any other error rolls back and is thrown as usual.
 */
export async function refusableTransaction<T, R>(
  db: Database,
  work: (tx: Tx, refuse: Refuse<R>) => Promise<T>,
): Promise<Refusable<T, R>> {
  const owner = {};
  const refuse: Refuse<R> = (reason) => {
    throw new Refusal(owner, reason);
  };
  try {
    return { ok: true, value: await db.transaction((tx) => work(tx, refuse)) };
  } catch (err) {
    if (err instanceof Refusal && err.owner === owner) return { ok: false, reason: err.reason as R };
    throw err;
  }
}
