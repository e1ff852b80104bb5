import type { Tx } from '../db/client.js';
import type { UserRow } from '../db/schema.js';
import { LastSignInMethodError } from '../errors.js';
import { countIdentities } from '../social/identities.js';
import { passkeysOf } from './passkeys.js';

/**
 * The one rule for "last way in": after the caller has taken a way to sign in away (an identity,
 * a passkey), in its transaction and under its lock of the user's row, LastSignInMethodError
 * unless the account still has a password, a linked identity or a passkey (a passkey signs in
 * without a password). The throw rolls the removal back. The lock (lockUser) is what makes two
 * concurrent removals of the last two ways run one after the other, the second seeing the first.
 */
export async function assertWayToSignIn(tx: Tx, user: Pick<UserRow, 'id' | 'passwordHash'>): Promise<void> {
  if (user.passwordHash !== null) return;
  if ((await countIdentities(tx, user.id)) > 0) return;
  if ((await passkeysOf(tx, user.id)).length > 0) return;
  throw new LastSignInMethodError();
}
