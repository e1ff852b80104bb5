import ipaddr from 'ipaddr.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { RequestInfo } from '../request-info.js';
import type { RateLimitName } from '../config.js';
import { RateLimitedError } from '../errors.js';
import type { Database, Tx } from '../db/client.js';
import type { Metrics, RefusalKind } from '../metrics.js';
import type { LockWitness, Lockout } from './lockout.js';
import type { RateLimiter, Refusal } from './rate-limiter.js';

/**
 * The rate-limit key of a client address. An IPv6 client usually holds a whole /64 and can
 * pick any address in it, so IPv6 is counted per /64; IPv4 (also IPv4-mapped IPv6) per address.
 */
export function clientKey(ip: string | null): string {
  if (!ip || !ipaddr.isValid(ip)) return ip ?? 'unknown';
  const address = ipaddr.process(ip);
  if (address.kind() === 'ipv4') return address.toString();
  const prefix = new ipaddr.IPv6([...(address as ipaddr.IPv6).parts.slice(0, 4), 0, 0, 0, 0]);
  return `${prefix.toString()}/64`;
}

/** One execution of a rate-limited field: the request, its limits by key kind, and the keys it has. */
export interface Attempt {
  request: RequestInfo;
  limits: { ip?: RateLimitName[]; account?: RateLimitName[]; email?: { limits: RateLimitName[] } };
  /** The normalized email, for limits counted per email. */
  email?: string | undefined;
  /** The signed-in account, for limits counted per account. */
  userId?: string | undefined;
}

/** A password sign-in that may go ahead, counted as a failure until it proves otherwise. */
export interface SignInAttempt {
  /** The password was wrong: the failure (and a lockout it started) stays counted. */
  failed(): Promise<void>;
  /** The password was right: clears the failures and the escalation. */
  succeeded(): Promise<void>;
  /** No password verdict (overload, a refusal after the check): the attempt is taken back. */
  release(): Promise<void>;
}

export interface AbuseGuard {
  /** Counts one execution of a rate-limited field; throws RateLimitedError when a limit is exceeded. */
  attempt(field: string, attempt: Attempt): Promise<void>;
  /**
   * Counts a password sign-in for an email under the lockout, before its password is checked;
   * throws RateLimitedError (checking nothing) while the email is locked. A lockout the attempt
   * sets is audited (`lockout`) in the transaction that sets it, and its lifting
   * (`lockout_lifted`: the password was right after all, or there was no verdict) in the one
   * that lifts it.
   */
  reserveSignIn(email: string, request: RequestInfo): Promise<SignInAttempt>;
}

const NOTHING_TO_COUNT: SignInAttempt = { failed: async () => {}, succeeded: async () => {}, release: async () => {} };

/** Rate limits and lockout together; `enabled: false` (RATE_LIMITS=off) lets everything through. */
export function createAbuseGuard(deps: {
  enabled: boolean;
  limiter: RateLimiter;
  lockout: Lockout;
  audit: AuditLog;
  /** The account of a normalized email, for audit events about it (null when none has it). */
  userIdOf: (email: string, db: Database | Tx) => Promise<string | null>;
  db: Database;
  /** Counts every refusal (the audit log keeps only the first of a wait). */
  metrics?: Pick<Metrics, 'countRefusal'> | undefined;
}): AbuseGuard {
  const { enabled, limiter, lockout, audit, userIdOf, db, metrics } = deps;

  /**
   * Throws RateLimitedError. Only the first refusal of a wait is audited: a flood of refused
   * requests must not become a flood of rows. `who` is resolved only then. Every refusal is
   * counted in the metrics (a counter costs nothing per refusal).
   */
  async function refuse(
    refusal: Refusal,
    counted: { kind: RefusalKind; field: string },
    who: () => { request: RequestInfo; userId?: string | undefined } | Promise<{ request: RequestInfo; userId?: string | undefined }>,
    detail: Record<string, unknown>,
  ): Promise<never> {
    metrics?.countRefusal(counted.kind, counted.field);
    if (refusal.first) {
      const { userId, request } = await who();
      await audit.record({ type: 'rate_limited', userId, request, detail: { ...detail, retryAfter: refusal.retryAfter } });
    }
    throw new RateLimitedError(refusal.retryAfter);
  }

  return {
    async attempt(field, attempt) {
      if (!enabled) return;
      const { limits } = attempt;
      const counted: [RateLimitName, string | undefined][] = [
        ...(limits.ip ?? []).map((name) => [name, clientKey(attempt.request.ip)] as [RateLimitName, string]),
        ...(limits.account ?? []).map((name) => [name, attempt.userId] as [RateLimitName, string | undefined]),
        ...(limits.email?.limits ?? []).map((name) => [name, attempt.email] as [RateLimitName, string | undefined]),
      ];
      let wait = 0;
      let firstRefusal = false;
      const exceeded: RateLimitName[] = [];
      for (const [name, key] of counted) {
        if (key === undefined) continue;
        const refusal = await limiter.hit(name, key);
        if (refusal !== null) {
          exceeded.push(name);
          wait = Math.max(wait, refusal.retryAfter);
          firstRefusal ||= refusal.first;
        }
      }
      if (exceeded.length === 0) return;
      const combined = { retryAfter: wait, first: firstRefusal };
      return refuse(combined, { kind: 'rate_limit', field }, () => attempt, { field, limits: exceeded });
    },

    async reserveSignIn(email, request) {
      if (!enabled) return NOTHING_TO_COUNT;
      const witness: LockWitness = {
        locked: async (tx, seconds) =>
          audit.record({ type: 'lockout', userId: await userIdOf(email, tx), request, detail: { seconds } }, tx),
        lifted: async (tx, reason) =>
          audit.record({ type: 'lockout_lifted', userId: await userIdOf(email, tx), request, detail: { reason } }, tx),
      };
      const reservation = await lockout.reserve(email, witness);
      if ('retryAfter' in reservation) {
        const who = async () => ({ request, userId: (await userIdOf(email, db)) ?? undefined });
        return refuse(reservation, { kind: 'lockout', field: 'login' }, who, { field: 'login', reason: 'lockout' });
      }
      return reservation;
    },
  };
}
