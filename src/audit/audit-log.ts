import { lt } from 'drizzle-orm';
import type { RequestInfo } from '../request-info.js';
import type { Clock } from '../clock.js';
import type { Database, Tx } from '../db/client.js';
import { authEvents } from '../db/schema.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { addSeconds } from '../time.js';

/** Every kind of event the audit log records. */
export const AUTH_EVENT_TYPES = [
  'login_success',
  'login_failure',
  'lockout',
  'lockout_lifted',
  'register',
  'refresh',
  'refresh_reuse_detected',
  'logout',
  'logout_everywhere',
  'password_change',
  'password_reset_requested',
  'password_reset',
  'email_verification_requested',
  'email_verified',
  'role_grant',
  'role_revoke',
  'user_disabled',
  'user_enabled',
  'session_revoked',
  'identity_linked',
  'identity_link_failure',
  'identity_unlinked',
  'rate_limited',
  'reauthentication',
  'second_factor_added',
  'second_factor_removed',
  'second_factor_failure',
  'recovery_codes_regenerated',
  'signing_key_created',
  'signing_key_activated',
  'signing_key_retired',
  'signing_key_removed',
  'signing_key_revoked',
] as const;
export type AuthEventType = (typeof AUTH_EVENT_TYPES)[number];

export interface AuthEvent {
  type: AuthEventType;
  userId?: string | null | undefined;
  request?: RequestInfo | null | undefined;
  /** Small, non-secret facts (ids, role names, reasons). Never a password or token. */
  detail?: Record<string, unknown>;
}

export interface AuditLog {
  /**
   * Stores the event and writes it as a structured log line. Given the transaction that
   * changes the state the event describes, the row is written in it, so the two commit or
   * roll back together (and a failure to store it fails the change). Without one (refusals,
   * failures: nothing changed) it never throws: auditing must not break sign-in.
   */
  record(event: AuthEvent, tx?: Tx): Promise<void>;
  /** Deletes events older than the retention period (AUDIT_RETENTION_DAYS); returns how many. */
  purgeExpired(): Promise<number>;
}

const WARN_EVENTS = new Set<AuthEventType>(['refresh_reuse_detected', 'lockout', 'login_failure', 'rate_limited', 'signing_key_revoked', 'second_factor_failure']);

/** The audit log in the auth_events table, mirrored to the JSON log. */
export function createAuditLog(deps: {
  db: Database;
  clock: Clock;
  logger: Logger;
  retentionDays: number;
  /** Counts each event by type (and a sign-in failure by reason); the app's audit log has it. */
  metrics?: Pick<Metrics, 'countAuthEvent'> | undefined;
}): AuditLog {
  const { db, clock, logger, retentionDays, metrics } = deps;
  return {
    async record(event, tx) {
      const row = {
        createdAt: clock.now(),
        type: event.type,
        userId: event.userId ?? null,
        ip: event.request?.ip ?? null,
        userAgent: event.request?.userAgent ?? null,
        detail: event.detail ?? {},
      };
      const level = WARN_EVENTS.has(event.type) ? 'warn' : 'info';
      const log = () =>
        logger[level]({ event: event.type, userId: row.userId, ip: row.ip, detail: row.detail }, `auth event: ${event.type}`);
      if (tx) {
        await tx.insert(authEvents).values(row);
        // Counted once the row is written; a transaction that rolls back after this (rare: the
        // event is written last) leaves the count one ahead of the table.
        metrics?.countAuthEvent(event.type, event.detail);
        log();
        return;
      }
      metrics?.countAuthEvent(event.type, event.detail);
      log();
      try {
        await db.insert(authEvents).values(row);
      } catch (err) {
        logger.error({ err, event: event.type }, 'could not store an audit event');
      }
    },
    async purgeExpired() {
      const cutoff = addSeconds(clock.now(), -retentionDays * 86_400);
      const deleted = await db.delete(authEvents).where(lt(authEvents.createdAt, cutoff)).returning({ id: authEvents.id });
      return deleted.length;
    },
  };
}
