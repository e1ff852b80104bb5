/**
 * Load from the orchestrator's process: autocannon, 10 keep-alive connections, each with a
 * connection object of its own (its token, its refresh chain) that builds every request and
 * judges every answer. Latency is timed here, per request, to a tenth of a millisecond
 * (autocannon's own histogram keeps whole milliseconds only).
 */
import autocannon from 'autocannon';
import { startCpuCount, type CpuShares } from './cpu.js';

export const CONNECTIONS = 10;

/** One autocannon connection's view of a scenario. */
export interface Connection {
  /** The next request: a GraphQL body, and the bearer token to send with it, if any. */
  next(): { body: string; token?: string | undefined };
  /** Whether a response is what the scenario expects (anything else is counted as an error). */
  check(status: number, body: string): boolean;
}

/** A request path under load; `connect` is called once per connection. */
export interface Scenario {
  title: string;
  connect(): Connection;
}

export interface Measurement {
  title: string;
  seconds: number;
  responses: number;
  reqPerSec: number;
  p50: number;
  p99: number;
  /** Responses the scenario did not expect, plus socket errors and timeouts. */
  errors: number;
  /** The first unexpected response, for the report. */
  firstError?: string | undefined;
  /** Where the CPU went while it ran (null where /proc is not readable). */
  cpu: CpuShares | null;
}

/** A server under load: its URL and its process, whose CPU is counted. */
export interface Target {
  base: string;
  pid: number;
}

/** The q-quantile (0 < q ≤ 1) of values sorted ascending; NaN when there are none. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Runs `scenario` against the server for `seconds` and summarizes it. */
export async function measure({ base, pid }: Target, scenario: Scenario, seconds: number): Promise<Measurement> {
  const latencies: number[] = [];
  let responses = 0;
  let errors = 0;
  let firstError: string | undefined;

  const stopCpuCount = startCpuCount(pid);
  const result = await autocannon({
    url: `${base}/graphql`,
    connections: CONNECTIONS,
    duration: seconds,
    setupClient: (client) => {
      const connection = scenario.connect();
      // The first request is built before the socket connects: its time would include the
      // connect, so it is not timed. Every later one is built just before it is written.
      let sentAt: number | undefined;
      let built = false;
      client.setRequests([
        {
          method: 'POST',
          path: '/graphql',
          setupRequest: (request) => {
            const { body, token } = connection.next();
            sentAt = built ? performance.now() : undefined;
            built = true;
            // A fresh headers object each time: autocannon writes Content-Length into it.
            const headers: Record<string, string> = { 'content-type': 'application/json' };
            if (token) headers.authorization = `Bearer ${token}`;
            return { ...request, headers, body };
          },
          onResponse: (status, body) => {
            if (sentAt !== undefined) latencies.push(performance.now() - sentAt);
            responses++;
            if (!connection.check(status, body)) {
              errors++;
              firstError ??= `HTTP ${status} ${body.slice(0, 240)}`;
            }
          },
        },
      ]);
    },
  });

  const cpu = stopCpuCount();
  latencies.sort((a, b) => a - b);
  const lost = result.errors + result.timeouts;
  if (lost > 0) firstError ??= `${result.errors} socket errors, ${result.timeouts} timeouts`;
  return {
    title: scenario.title,
    seconds: result.duration,
    responses,
    reqPerSec: responses / result.duration,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    errors: errors + lost,
    firstError,
    cpu,
  };
}

/** A short unmeasured run (JIT, pools, caches), then the measured one. */
export async function warmAndMeasure(server: Target, scenario: Scenario, seconds: number, warmupSeconds: number): Promise<Measurement> {
  if (warmupSeconds > 0) await measure(server, scenario, warmupSeconds);
  return measure(server, scenario, seconds);
}
