import { and, count, eq, sql } from 'drizzle-orm';
import type { AuditLog } from '../audit/audit-log.js';
import type { RequestInfo } from '../request-info.js';
import type { Clock } from '../clock.js';
import type { Database, Tx } from '../db/client.js';
import { roles, userRoles, users, type UserRow } from '../db/schema.js';
import { LastAdminError, RoleNotHeldError, SelfChangeError, UnknownRoleError, UserNotFoundError } from '../errors.js';
import { lockUser, setActive, toAccount, type Account } from '../accounts/accounts.js';
import { revokeOneTimeTokens } from '../accounts/one-time-tokens.js';
import { signOutEverywhere } from '../sessions/sessions.js';
import { ADMIN_ROLE } from './permissions.js';

/** Who asks for a change: a signed-in administrator (by user id), or the operator's CLI. */
export type Actor = { kind: 'user'; userId: string; request: RequestInfo } | { kind: 'operator' };

// Every change that can reduce the set of active admins takes this lock first, so two
// admins demoting each other at the same moment cannot both succeed and leave none.
const ADMIN_SET_LOCK = sql`select pg_advisory_xact_lock(hashtext('authgraph:admin-set'))`;

async function lockedUser(tx: Tx, userId: string): Promise<UserRow> {
  const user = await lockUser(tx, userId);
  if (!user) throw new UserNotFoundError();
  return user;
}

async function isActiveAdmin(tx: Tx, userId: string): Promise<boolean> {
  const [row] = await tx
    .select({ n: count() })
    .from(userRoles)
    .innerJoin(users, eq(users.id, userRoles.userId))
    .where(and(eq(userRoles.userId, userId), eq(userRoles.role, ADMIN_ROLE), eq(users.active, true)));
  return (row?.n ?? 0) > 0;
}

async function assertAnotherActiveAdmin(tx: Tx, userId: string): Promise<void> {
  if (!(await isActiveAdmin(tx, userId))) return;
  const [row] = await tx
    .select({ n: count() })
    .from(userRoles)
    .innerJoin(users, eq(users.id, userRoles.userId))
    .where(and(eq(userRoles.role, ADMIN_ROLE), eq(users.active, true)));
  if ((row?.n ?? 0) <= 1) throw new LastAdminError();
}

/**
 * Roles:grant lets one hand out only the roles one holds: a holder of a lesser role cannot
 * make a second account of theirs an admin. The operator's CLI is exempt.
 */
async function assertActorHolds(tx: Tx, actor: Actor, role: string): Promise<void> {
  if (actor.kind !== 'user') return;
  const [held] = await tx
    .select({ role: userRoles.role })
    .from(userRoles)
    .where(and(eq(userRoles.userId, actor.userId), eq(userRoles.role, role)));
  if (!held) throw new RoleNotHeldError(role);
}

function assertNotSelf(actor: Actor, userId: string): void {
  if (actor.kind === 'user' && actor.userId === userId) throw new SelfChangeError();
}

/** Grants, revokes and disables, with the rules that keep an installation administrable. */
export function createRoleAdmin(deps: { db: Database; clock: Clock; audit: AuditLog }) {
  const { db, clock, audit } = deps;

  type AdminEvent = 'role_grant' | 'role_revoke' | 'user_disabled' | 'user_enabled';
  const record = (tx: Tx, type: AdminEvent, actor: Actor, userId: string, detail: Record<string, unknown> = {}) =>
    audit.record(
      {
        type,
        userId,
        request: actor.kind === 'user' ? actor.request : null,
        detail: { ...detail, by: actor.kind === 'user' ? actor.userId : 'operator' },
      },
      tx,
    );

  async function assertRoleExists(tx: Tx, role: string): Promise<void> {
    const [row] = await tx.select({ name: roles.name }).from(roles).where(eq(roles.name, role));
    if (!row) throw new UnknownRoleError(role);
  }

  return {
    /** Gives a user a role. Nobody grants roles to themselves, nor a role they do not hold. */
    async grantRole(actor: Actor, userId: string, role: string): Promise<Account> {
      assertNotSelf(actor, userId);
      const user = await db.transaction(async (tx) => {
        await assertRoleExists(tx, role);
        const user = await lockedUser(tx, userId);
        await assertActorHolds(tx, actor, role);
        await tx.insert(userRoles).values({ userId, role, createdAt: clock.now() }).onConflictDoNothing();
        await record(tx, 'role_grant', actor, userId, { role });
        return user;
      });
      return toAccount(user);
    },

    /** Takes a role from a user (only a holder of that role can); the last active admin keeps theirs. */
    async revokeRole(actor: Actor, userId: string, role: string): Promise<Account> {
      assertNotSelf(actor, userId);
      const user = await db.transaction(async (tx) => {
        await assertRoleExists(tx, role);
        await tx.execute(ADMIN_SET_LOCK);
        const user = await lockedUser(tx, userId);
        if (role === ADMIN_ROLE) await assertAnotherActiveAdmin(tx, userId);
        await assertActorHolds(tx, actor, role);
        await tx.delete(userRoles).where(and(eq(userRoles.userId, userId), eq(userRoles.role, role)));
        await record(tx, 'role_revoke', actor, userId, { role });
        return user;
      });
      return toAccount(user);
    },

    /**
     * Enables or disables an account. Disabling revokes every session and access token of the
     * user at once; the last active admin cannot be disabled.
     */
    async setUserActive(actor: Actor, userId: string, active: boolean): Promise<Account> {
      assertNotSelf(actor, userId);
      const now = clock.now();
      const user = await db.transaction(async (tx) => {
        await tx.execute(ADMIN_SET_LOCK);
        await lockedUser(tx, userId);
        if (!active) {
          await assertAnotherActiveAdmin(tx, userId);
          await signOutEverywhere(tx, userId, now);
          // A re-enabled account starts clean: no link mailed before it was disabled works.
          await revokeOneTimeTokens(tx, userId, ['reset_password', 'verify_email']);
        }
        const updated = await setActive(tx, userId, active);
        await record(tx, active ? 'user_enabled' : 'user_disabled', actor, userId);
        return updated;
      });
      return toAccount(user);
    },
  };
}

export type RoleAdmin = ReturnType<typeof createRoleAdmin>;
