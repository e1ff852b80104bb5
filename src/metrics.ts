import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Why a password sign-in failed, as a metric label. The set is closed: a reason outside it is
 * counted as `other`, so no free text (or anything a client chose) ever becomes a label.
 */
export const SIGN_IN_FAILURE_REASONS = [
  'wrong_password',
  'unknown_email',
  'account_disabled',
  'email_not_verified',
  'credentials_changed',
] as const;
type SignInFailureReason = (typeof SIGN_IN_FAILURE_REASONS)[number] | 'other';

/** The request paths latency is reported by; every other path is `other`. */
export const HTTP_ROUTES = ['/graphql', '/health', '/ready', '/.well-known/jwks.json', '/metrics'] as const;
export type HttpRoute = (typeof HTTP_ROUTES)[number] | 'other';

/** A refusal of the abuse guard: a rate limit, or the sign-in lockout of an email. */
export type RefusalKind = 'rate_limit' | 'lockout';

/** A LISTEN channel whose connection state is reported. */
export type ListenerChannel = 'signing_keys' | 'changes';

/**
 * This app's metrics, in a registry of its own (never prom-client's global one: a process may
 * hold many apps, as the tests do). Every label value comes from a closed set in the code
 * (event types, schema field names, routes, reasons above): never an email, id, address or token.
 */
export interface Metrics {
  registry: Registry;
  /** An audit event of a closed type; `reason` is read from a login_failure's detail. */
  countAuthEvent(type: string, detail?: Record<string, unknown>): void;
  /** A refused call of a GraphQL field (`field` is its name in the schema). */
  countRefusal(kind: RefusalKind, field: string): void;
  /** Seconds an argon2 job waited for a slot before it started. */
  observeArgon2Wait(seconds: number): void;
  /** One HTTP request's handling time. */
  observeRequest(route: HttpRoute, status: number, seconds: number): void;
  /** An argon2 job refused because the gate was full or the job waited too long. */
  countArgon2Refusal(): void;
  /** One revocation check, answered from memory or from the database. */
  countRevocationCheck(source: 'memory' | 'database'): void;
  /** Reports the argon2 queue's length, read at each scrape. */
  watchArgon2Queue(length: () => number): void;
  /** Reports how many HTTP requests are being handled, read at each scrape (the server's, not a test app's). */
  watchRequestsInFlight(count: () => number): void;
  /** Reports a listener's state, read at each scrape; `connected` returns null when there is no listener. */
  watchListener(channel: ListenerChannel, connected: () => boolean | null): void;
}

const REASONS = new Set<string>(SIGN_IN_FAILURE_REASONS);

function failureReason(detail: Record<string, unknown> | undefined): SignInFailureReason {
  const reason = detail?.reason;
  return typeof reason === 'string' && REASONS.has(reason) ? (reason as SignInFailureReason) : 'other';
}

/** Creates the metrics of one app, each in a fresh registry. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const authEvents = new Counter({
    name: 'authgraph_auth_events_total',
    help: 'Audit events by type (login_success, login_failure, refresh, refresh_reuse_detected, lockout, ...).',
    labelNames: ['type'],
    registers,
  });
  const signInFailures = new Counter({
    name: 'authgraph_sign_in_failures_total',
    help: 'Failed password sign-ins by reason.',
    labelNames: ['reason'],
    registers,
  });
  // Known reasons start at 0, so that a rate over them exists before the first failure.
  for (const reason of [...SIGN_IN_FAILURE_REASONS, 'other']) signInFailures.inc({ reason }, 0);
  const refusals = new Counter({
    name: 'authgraph_abuse_refusals_total',
    help: 'Calls refused by a rate limit or the sign-in lockout (every refusal), by GraphQL field.',
    labelNames: ['kind', 'field'],
    registers,
  });
  const argon2Wait = new Histogram({
    name: 'authgraph_argon2_wait_seconds',
    help: 'Time an argon2 job waited for a slot before it started (0 when one was free).',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const requestDuration = new Histogram({
    name: 'authgraph_http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by route and status.',
    labelNames: ['route', 'status'],
    registers,
  });

  const argon2Refusals = new Counter({
    name: 'authgraph_argon2_refusals_total',
    help: 'argon2 jobs refused because the server was busy (the queue was full, or the wait too long).',
    registers,
  });
  const revocationChecks = new Counter({
    name: 'authgraph_revocation_checks_total',
    help: 'Revocation checks of access tokens, by where they were answered: memory (kept exact by LISTEN/NOTIFY), or the database (a cache miss, or the listener down).',
    labelNames: ['source'],
    registers,
  });
  for (const source of ['memory', 'database']) revocationChecks.inc({ source }, 0);
  const listeners = new Map<ListenerChannel, () => boolean | null>();
  new Gauge({
    name: 'authgraph_listener_connected',
    help: '1 while the LISTEN connection of a channel is up, 0 while it is down.',
    labelNames: ['channel'],
    registers,
    collect() {
      for (const [channel, connected] of listeners) {
        const state = connected();
        if (state !== null) this.set({ channel }, state ? 1 : 0);
      }
    },
  });

  return {
    registry,
    countArgon2Refusal() {
      argon2Refusals.inc();
    },
    countRevocationCheck(source) {
      revocationChecks.inc({ source });
    },
    countAuthEvent(type, detail) {
      authEvents.inc({ type });
      if (type === 'login_failure') signInFailures.inc({ reason: failureReason(detail) });
    },
    countRefusal(kind, field) {
      refusals.inc({ kind, field });
    },
    observeArgon2Wait(seconds) {
      argon2Wait.observe(seconds);
    },
    observeRequest(route, status, seconds) {
      requestDuration.observe({ route, status: String(status) }, seconds);
    },
    watchArgon2Queue(length) {
      new Gauge({
        name: 'authgraph_argon2_queue_depth',
        help: 'argon2 jobs waiting for a slot.',
        registers,
        collect() {
          this.set(length());
        },
      });
    },
    watchRequestsInFlight(count) {
      new Gauge({
        name: 'authgraph_http_requests_in_flight',
        help: 'HTTP requests being handled: from their headers read until their work ends (also when the client hung up). This scrape counts itself.',
        registers,
        collect() {
          this.set(count());
        },
      });
    },
    watchListener(channel, connected) {
      listeners.set(channel, connected);
    },
  };
}
