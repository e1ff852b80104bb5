/**
 * How soon a revocation on one instance is honoured by another on the same database: per
 * session, B serves the token once (so whatever B caches is warm), A logs the session out, and
 * B is polled, one request after another, until it refuses the token.
 */
import { isUnauthenticated, OPERATIONS, post, type Session } from './http.js';
import { quantile } from './load.js';

/** Past this, a round counts as a revocation B never honoured. */
const GIVE_UP_MS = 2000;

export interface Propagation {
  rounds: number;
  /** Milliseconds from A's logout answer to B's first refusal (or to giving up), sorted ascending. */
  samples: number[];
  p50: number;
  p99: number;
  max: number;
  /** Polls of B per round, on average (1: the first request after the logout was refused). */
  pollsPerRound: number;
  /** Rounds in which B still served the token GIVE_UP_MS after the logout. */
  missed: number;
}

/** Thrown when an answer is neither the expected one nor a refusal: the run is broken. */
export class UnexpectedAnswer extends Error {
  override name = 'UnexpectedAnswer';
}

const meId = (text: string) => text.includes('"me":{"id":');

/** One round per session; each session is revoked (spent) by it. */
export async function measurePropagation(a: string, b: string, sessions: readonly Session[]): Promise<Propagation> {
  const samples: number[] = [];
  let polls = 0;
  let missed = 0;
  for (const session of sessions) {
    const warm = await post(b, OPERATIONS.meId, {}, session.accessToken);
    if (warm.status !== 200 || !meId(warm.text)) {
      throw new UnexpectedAnswer(`B did not serve a valid token before its revocation: HTTP ${warm.status} ${warm.text.slice(0, 240)}`);
    }
    const logout = await post(a, OPERATIONS.logout, { token: session.refreshToken }, session.accessToken);
    const revokedAt = performance.now();
    if (logout.status !== 200 || !logout.text.includes('"logout":true')) {
      throw new UnexpectedAnswer(`logout on A failed: HTTP ${logout.status} ${logout.text.slice(0, 240)}`);
    }
    for (;;) {
      const poll = await post(b, OPERATIONS.meId, {}, session.accessToken);
      const now = performance.now();
      polls++;
      if (poll.status === 200 && isUnauthenticated(poll.text)) {
        samples.push(now - revokedAt);
        break;
      }
      if (poll.status !== 200 || !meId(poll.text)) {
        throw new UnexpectedAnswer(`B answered a poll with HTTP ${poll.status} ${poll.text.slice(0, 240)}`);
      }
      if (now - revokedAt > GIVE_UP_MS) {
        // Kept as a sample (a lower bound), so that the percentiles cannot hide it.
        samples.push(now - revokedAt);
        missed++;
        break;
      }
    }
  }
  samples.sort((x, y) => x - y);
  return {
    rounds: sessions.length,
    samples,
    p50: quantile(samples, 0.5),
    p99: quantile(samples, 0.99),
    max: samples.at(-1) ?? Number.NaN,
    pollsPerRound: polls / sessions.length,
    missed,
  };
}
