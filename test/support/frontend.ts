/**
 * The frontend clients of examples/clients driven as an app would drive them, against the app on
 * a real HTTP port: each client set-up behind one small interface, so the same behaviour tests
 * run over urql and Apollo, and over each refresh-token transport.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CombinedGraphQLErrors, gql } from '@apollo/client';
import { unauthenticatedReason, type AuthSession, type AuthSessionOptions } from '../../examples/clients/auth-session.js';
import { createApolloClient } from '../../examples/clients/apollo-client.js';
import { createUrqlClient } from '../../examples/clients/urql-client.js';
import { eventsOfUser } from './abuse.js';
import { installBrowserFetch, type Browser } from './browser-fetch.js';
import { createTestApp, type TestApp } from './app.js';
import { listen, type Listening } from './listen.js';

/** A short access-token lifetime: tests move the app's clock past it. */
export const SHORT_ACCESS_TTL = 60;

/** A request as it reached the server: method and URL only (bodies are left to yoga). */
export interface SeenRequest {
  method: string;
  url: string;
}

export interface FrontendServer {
  t: TestApp;
  /** The GraphQL endpoint as the clients' browser names it (http://api.example.com:<port>/graphql, served on 127.0.0.1). */
  url: string;
  /** Every request the server received, oldest first. */
  requests: SeenRequest[];
  /**
   * The one browser every client here runs in (its tabs share its cookies), a page of another
   * origin than the API: see browser-fetch.ts.
   */
  browser: Browser;
  /** How many refreshes (rotations and grace-window retries) the server has recorded for a user. */
  refreshCount(userId: string): Promise<number>;
  /** How many refresh mutations clients of this process have sent so far, answered or refused. */
  refreshAttempts(): number;
  /**
   * Holds the next request that arrives, unread, until `release()`: a request sent before
   * others but answered after them. `arrived` settles once it is held.
   */
  holdNextRequest(): { arrived: Promise<void>; release(): void };
  close(): Promise<void>;
}

/**
 * Counts the refresh mutations sent to `url` through the global fetch, which every client here
 * uses: the server records only the refreshes it grants. Returns the count and the undo.
 */
function countRefreshRequests(url: string): { count(): number; restore(): void } {
  const original = globalThis.fetch;
  let count = 0;
  globalThis.fetch = (input, init) => {
    const target = input instanceof Request ? input.url : String(input);
    if (target.startsWith(url) && typeof init?.body === 'string' && /\brefresh\s*\(/.test(init.body)) count++;
    return original(input, init);
  };
  return { count: () => count, restore: () => void (globalThis.fetch = original) };
}

/** The app, with a short access-token lifetime, on a free port of 127.0.0.1. */
export async function startFrontendServer(env: Record<string, string> = {}): Promise<FrontendServer> {
  const t = await createTestApp({ ACCESS_TOKEN_TTL: String(SHORT_ACCESS_TTL), ...env });
  const requests: SeenRequest[] = [];
  let hold: { arrive(): void; released: Promise<void> } | null = null;
  let listening: Listening;
  try {
    listening = await listen(async (req: IncomingMessage, res: ServerResponse) => {
      requests.push({ method: req.method ?? '', url: req.url ?? '' });
      const held = hold;
      hold = null;
      if (held) {
        held.arrive();
        await held.released;
      }
      void t.app(req, res);
    });
  } catch (err) {
    await t.close();
    throw err;
  }
  const refreshes = countRefreshRequests(`${listening.url}/graphql`);
  const browser = installBrowserFetch(listening.url);
  return {
    t,
    url: browser.apiUrl('/graphql'),
    requests,
    browser,
    refreshAttempts: () => refreshes.count(),
    holdNextRequest() {
      let arrive!: () => void;
      let release!: () => void;
      const arrived = new Promise<void>((resolve) => (arrive = resolve));
      hold = { arrive, released: new Promise<void>((resolve) => (release = resolve)) };
      return { arrived, release };
    },
    async refreshCount(userId) {
      return (await eventsOfUser(t, userId)).filter((e) => e.type === 'refresh').length;
    },
    async close() {
      browser.restore();
      refreshes.restore();
      await listening.close();
      await t.close();
    },
  };
}

/** What the caller of a query sees: the data, or the error (with its UNAUTHENTICATED reason, if any). */
export interface QueryOutcome {
  me?: Record<string, unknown> | null;
  error?: { reason: string | null; message: string };
}

/** One client set-up of examples/clients, as the tests drive it. */
export interface FrontendClient {
  session: AuthSession;
  /** Signs in through the client (the login mutation) and hands the tokens to its session. */
  signIn(email: string, password: string): Promise<void>;
  /** Asks for `me { id <field> }` from the network, not the cache. */
  me(field?: string): Promise<QueryOutcome>;
}

export interface ClientSetup {
  name: string;
  /** The HTTP method its queries go out with, by default. */
  queryMethod: 'GET' | 'POST';
  create(options: AuthSessionOptions): FrontendClient;
}

const LOGIN = `mutation Login($input: LoginInput!) {
  login(input: $input) { __typename ... on AuthPayload { accessToken refreshToken } ... on Error { code message } }
}`;
/** A distinct document per field, so that no client merges concurrent queries into one request. */
const meQuery = (field: string) => `query Me_${field} { me { id ${field} } }`;

interface LoginData {
  login: { __typename: string; accessToken?: string; refreshToken?: string | null; code?: string };
}

function tokensOf(data: LoginData | null | undefined) {
  const login = data?.login;
  if (login?.__typename !== 'AuthPayload') throw new Error(`login failed: ${JSON.stringify(login)}`);
  return { accessToken: login.accessToken!, refreshToken: login.refreshToken ?? null };
}

const outcomeOf = (errors: readonly { message: string; extensions?: Record<string, unknown> }[]): QueryOutcome => ({
  error: { reason: unauthenticatedReason(errors), message: errors.map((e) => e.message).join('; ') },
});

export const URQL: ClientSetup = {
  name: 'urql',
  queryMethod: 'GET',
  create(options) {
    const { client, session } = createUrqlClient(options);
    return {
      session,
      async signIn(email, password) {
        const result = await client.mutation<LoginData>(LOGIN, { input: { email, password } }).toPromise();
        if (result.error) throw result.error;
        session.signIn(tokensOf(result.data));
      },
      async me(field = 'email') {
        const result = await client.query(meQuery(field), {}, { requestPolicy: 'network-only' }).toPromise();
        if (result.error) return outcomeOf(result.error.graphQLErrors);
        return { me: result.data.me };
      },
    };
  },
};

export const APOLLO: ClientSetup = {
  name: 'Apollo Client',
  queryMethod: 'POST',
  create(options) {
    const { client, session } = createApolloClient(options);
    return {
      session,
      async signIn(email, password) {
        const result = await client.mutate<LoginData>({ mutation: gql(LOGIN), variables: { input: { email, password } } });
        session.signIn(tokensOf(result.data));
      },
      async me(field = 'email') {
        try {
          const result = await client.query<{ me: Record<string, unknown> | null }>({ query: gql(meQuery(field)), fetchPolicy: 'network-only' });
          if (result.error) throw result.error;
          return { me: result.data?.me };
        } catch (error) {
          if (CombinedGraphQLErrors.is(error)) return outcomeOf(error.errors);
          throw error;
        }
      },
    };
  },
};

export const CLIENT_SETUPS = [URQL, APOLLO];
