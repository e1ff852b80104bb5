/** Helpers for the abuse-resistance tests: fresh client addresses, raw HTTP requests, audit rows. */
import { randomInt } from 'node:crypto';
import { and, eq, inArray } from 'drizzle-orm';
import { expect } from 'vitest';
import { limitKey } from '../../src/abuse/rate-limiter.js';
import type { RateLimitName } from '../../src/config.js';
import { authEvents, rateLimits } from '../../src/db/schema.js';
import type { GraphQLResponse, TestApp } from './app.js';
import { LOGIN } from './operations.js';

// Addresses are handed out in sequence from a random start, so no two in one process collide.
let nextIp = randomInt(0, 1 << 16);
/** A client address no other test of this file uses (198.18.0.0/15, the benchmarking range). */
export function uniqueIp(): string {
  const n = nextIp++ % (1 << 17);
  return `198.${18 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`;
}

/** Runs `login` from an address; returns the union member. */
export async function loginFrom(t: TestApp, email: string, password: string, ip: string) {
  const res = await t.gql(LOGIN, { input: { email, password } }, { ip });
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!.login as Record<string, any>;
}

/**
 * Asserts a RateLimitedError union member and returns its retryAfter. `busy`: refused for the
 * server's load (the argon2 queue), whose message says so, not for the client's attempts.
 */
export function expectRateLimited(member: Record<string, any> | undefined, cause: 'attempts' | 'busy' = 'attempts'): number {
  expect(member, JSON.stringify(member)).toMatchObject({
    __typename: 'RateLimitedError',
    code: 'RATE_LIMITED',
    retryAfter: expect.any(Number),
  });
  const reason = cause === 'busy' ? 'The server is busy' : 'Too many attempts';
  expect(member!.message).toBe(`${reason}. Try again in ${member!.retryAfter} seconds.`);
  return member!.retryAfter as number;
}

/** Hits stored for a limit and key now, or 0 when there is no counter. */
export async function storedHits(t: TestApp, name: RateLimitName, key: string): Promise<number> {
  const [row] = await t.database.db.select().from(rateLimits).where(eq(rateLimits.key, limitKey(name, key)));
  return row?.hits ?? 0;
}

/** Audit rows recorded for requests from an address, oldest first. */
export async function eventsFromIp(t: TestApp, ip: string, types?: string[]) {
  const where = types ? and(eq(authEvents.ip, ip), inArray(authEvents.type, types)) : eq(authEvents.ip, ip);
  const rows = await t.database.db.select().from(authEvents).where(where);
  return rows.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
}

/** Audit rows about a user. */
export function eventsOfUser(t: TestApp, userId: string) {
  return t.database.db.select().from(authEvents).where(eq(authEvents.userId, userId));
}

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
}

/** Sends a request to the app as it comes off the socket of `ip`. */
export async function rawFetch(
  t: TestApp,
  path: string,
  init: RequestInit & { duplex?: 'half' } = {},
  ip = '127.0.0.1',
): Promise<RawResponse> {
  const response = await t.app.fetch(`http://authgraph.test${path}`, init, { req: { socket: { remoteAddress: ip } } });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** Asserts the answer is the validation refusal of a GraphQL operation: errors, and no data at all. */
export function expectRejectedBeforeExecution(res: GraphQLResponse, message: RegExp) {
  expect(res.errors, JSON.stringify(res)).toBeDefined();
  expect(res.errors!.length).toBeGreaterThanOrEqual(1);
  expect(res.errors!.map((e) => e.message).join('\n')).toMatch(message);
  expect(res.data, JSON.stringify(res)).toBeUndefined();
}
