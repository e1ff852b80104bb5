import ipaddr from 'ipaddr.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { RequestInfo } from '../auth/sessions.js';
import type { RateLimitName } from '../config.js';
import { InvalidCredentialsError, RateLimitedError } from '../errors.js';
import type { Lockout } from './lockout.js';
import type { RateLimiter, Refusal } from './rate-limiter.js';

/** Fields that spend a password check, send a mail or mint tokens: counted per execution. */
export const SENSITIVE_FIELDS = [
  'login',
  'register',
  'refresh',
  'requestPasswordReset',
  'requestEmailVerification',
  'changePassword',
  'resetPassword',
  'verifyEmail',
] as const;
export type SensitiveField = (typeof SENSITIVE_FIELDS)[number];

type KeyKind = 'ip' | 'email' | 'account';
const LIMITS: Record<SensitiveField, ReadonlyArray<readonly [RateLimitName, KeyKind]>> = {
  login: [['LOGIN_IP', 'ip']],
  register: [['REGISTER_IP', 'ip']],
  refresh: [['REFRESH_IP', 'ip']],
  requestPasswordReset: [
    ['REQUEST_PASSWORD_RESET_IP', 'ip'],
    ['REQUEST_PASSWORD_RESET_EMAIL', 'email'],
  ],
  resetPassword: [['RESET_PASSWORD_IP', 'ip']],
  requestEmailVerification: [['REQUEST_EMAIL_VERIFICATION_ACCOUNT', 'account']],
  changePassword: [
    ['CHANGE_PASSWORD_ACCOUNT', 'account'],
    ['CHANGE_PASSWORD_IP', 'ip'],
  ],
  verifyEmail: [['VERIFY_EMAIL_IP', 'ip']],
};

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

/** Who is attempting: the request, plus the normalized email or the account where there is one. */
export interface Attempt {
  request: RequestInfo;
  email?: string;
  userId?: string;
}

export interface AbuseGuard {
  /** Counts one execution of a sensitive field; throws RateLimitedError when a limit is exceeded. */
  attempt(field: SensitiveField, who: Attempt): Promise<void>;
  /**
   * Runs a password sign-in under the lockout: refused (without checking the password) while
   * the email is locked; a wrong password counts towards a lockout; success clears it.
   */
  signIn<T>(email: string, request: RequestInfo, work: () => Promise<T>): Promise<T>;
}

/** Rate limits and lockout together; `enabled: false` (RATE_LIMITS=off) lets everything through. */
export function createAbuseGuard(deps: {
  enabled: boolean;
  limiter: RateLimiter;
  lockout: Lockout;
  audit: AuditLog;
  /** The account of a normalized email, for audit events about it (null when none has it). */
  userIdOf: (email: string) => Promise<string | null>;
}): AbuseGuard {
  const { enabled, limiter, lockout, audit, userIdOf } = deps;

  /**
   * Throws RateLimitedError. Only the first refusal of a wait is audited: a flood of refused
   * requests must not become a flood of rows. `who` is resolved only then.
   */
  async function refuse(refusal: Refusal, who: () => Attempt | Promise<Attempt>, detail: Record<string, unknown>): Promise<never> {
    if (refusal.first) {
      const { userId, request } = await who();
      await audit.record({ type: 'rate_limited', userId, request, detail: { ...detail, retryAfter: refusal.retryAfter } });
    }
    throw new RateLimitedError(refusal.retryAfter);
  }

  return {
    async attempt(field, who) {
      if (!enabled) return;
      const keys: Record<KeyKind, string | undefined> = {
        ip: clientKey(who.request.ip),
        email: who.email,
        account: who.userId,
      };
      let wait = 0;
      let firstRefusal = false;
      const exceeded: RateLimitName[] = [];
      for (const [name, kind] of LIMITS[field]) {
        const key = keys[kind];
        if (key === undefined) continue;
        const refusal = await limiter.hit(name, key);
        if (refusal !== null) {
          exceeded.push(name);
          wait = Math.max(wait, refusal.retryAfter);
          firstRefusal ||= refusal.first;
        }
      }
      if (exceeded.length === 0) return;
      return refuse({ retryAfter: wait, first: firstRefusal }, () => who, { field, limits: exceeded });
    },

    async signIn(email, request, work) {
      if (!enabled) return work();
      const reservation = await lockout.reserve(email);
      if ('retryAfter' in reservation) {
        const who = async () => ({ request, userId: (await userIdOf(email)) ?? undefined });
        return refuse(reservation, who, { field: 'login', reason: 'lockout' });
      }
      let result: Awaited<ReturnType<typeof work>>;
      try {
        result = await work();
      } catch (err) {
        if (err instanceof InvalidCredentialsError) {
          const lockedFor = await reservation.failed();
          if (lockedFor !== null) {
            await audit.record({ type: 'lockout', userId: await userIdOf(email), request, detail: { seconds: lockedFor } });
          }
        } else {
          await reservation.release();
        }
        throw err;
      }
      await reservation.succeeded();
      return result;
    },
  };
}
