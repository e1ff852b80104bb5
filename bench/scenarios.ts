/**
 * The request paths the bench drives, each as a Scenario (bench/load.ts): what every
 * connection sends, and which answers count as right.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { graphqlBody, isUnauthenticated, OPERATIONS, PASSWORD, type Session } from './http.js';
import type { Connection, Scenario } from './load.js';

const ME = graphqlBody(OPERATIONS.me);
const signedIn = (status: number, body: string) => status === 200 && body.includes('"me":{"id":') && !body.includes('"errors"');
const refused = (status: number, body: string) => status === 200 && body.includes('"me":null') && isUnauthenticated(body);

/** A scenario whose connections all send the same request. */
function constant(title: string, body: string, check: Connection['check']): Scenario {
  return { title, connect: () => ({ next: () => ({ body }), check }) };
}

/** `{ hello }` on the bare yoga server. */
export function helloScenario(): Scenario {
  const body = graphqlBody(OPERATIONS.hello);
  return constant('bare yoga { hello }', body, (status, text) => status === 200 && text.includes('"hello":"world"'));
}

/** `{ me { id email roles } }` with a valid access token; connection i uses tokens[i mod n]. */
export function meScenario(tokens: readonly string[]): Scenario {
  let connections = 0;
  return {
    title: 'me, authenticated',
    connect: () => {
      const token = tokens[connections++ % tokens.length]!;
      return { next: () => ({ body: ME, token }), check: signedIn };
    },
  };
}

/** `me` without a token: the expected answer is `me: null` with UNAUTHENTICATED. */
export function anonymousMeScenario(): Scenario {
  return constant('me, anonymous', ME, refused);
}

/**
 * Rotating refresh: each connection takes a session of its own from `pool` and sends each
 * refresh with the token the previous answer returned. The pool needs one session per
 * connection of every run (warm-up included): a chain cut at the end of a run is not reused.
 */
export function refreshScenario(pool: Session[]): Scenario {
  return {
    title: 'refresh (rotating)',
    connect: () => {
      const session = pool.shift();
      if (!session) throw new Error('refresh scenario: no session left in the pool');
      let token = session.refreshToken;
      return {
        next: () => ({ body: graphqlBody(OPERATIONS.refresh, { token }) }),
        check: (status, body) => {
          if (status !== 200) return false;
          const payload = (JSON.parse(body) as { data?: { refresh?: { __typename?: string; refreshToken?: string } } }).data
            ?.refresh;
          if (payload?.__typename !== 'AuthPayload' || !payload.refreshToken) return false;
          token = payload.refreshToken;
          return true;
        },
      };
    },
  };
}

/** `login` with the right password; connection i signs in as emails[i mod n]. */
export function loginScenario(emails: readonly string[]): Scenario {
  let connections = 0;
  return {
    title: 'login (argon2id verify)',
    connect: () => {
      const email = emails[connections++ % emails.length]!;
      const body = graphqlBody(OPERATIONS.login, { input: { email, password: PASSWORD } });
      return { next: () => ({ body }), check: (status, text) => status === 200 && text.includes('"__typename":"AuthPayload"') };
    },
  };
}

const base64url = (data: string | Buffer) => Buffer.from(data).toString('base64url');

/**
 * A token that looks like one of the server's (same header, a payload of the same shape) with
 * a fresh jti and a random signature: every one is distinct, and none verifies.
 */
function forger(model: string): () => string {
  const [header, payload] = model.split('.');
  const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
  return () => `${header}.${base64url(JSON.stringify({ ...claims, jti: randomUUID() }))}.${base64url(randomBytes(64))}`;
}

/**
 * The memory run's load: `me` taking the valid tokens in turn, every other request carrying a
 * forged token never seen before (it must be refused, and must not grow any cache for good).
 */
export function mixedMeScenario(tokens: readonly string[]): Scenario & { forged(): number } {
  let next = 0;
  let forged = 0;
  const forge = forger(tokens[0]!);
  return {
    title: 'me, valid and forged tokens',
    forged: () => forged,
    connect: () => {
      let lastForged = false;
      return {
        next: () => {
          lastForged = !lastForged;
          if (!lastForged) return { body: ME, token: tokens[next++ % tokens.length] };
          forged++;
          return { body: ME, token: forge() };
        },
        check: (status, body) => (lastForged ? refused(status, body) : signedIn(status, body)),
      };
    },
  };
}
