import type { DatabaseHandle } from '../../src/db/client.js';
import { createTestApp, type GraphQLResponse, type RequestOptions, type TestApp } from './app.js';
import { listen, type Listening } from './listen.js';

/** A test app served on a real local port; `gql` sends each operation over HTTP as a client would. */
export interface ServedApp {
  t: TestApp;
  server: Listening;
  gql<T = Record<string, any>>(query: string, variables?: Record<string, unknown>, options?: RequestOptions): Promise<GraphQLResponse<T>>;
  close(): Promise<void>;
}

/** createTestApp (frozen clock, `env` overrides) behind a real HTTP listener. */
export async function serveTestApp(env: Record<string, string> = {}, database?: DatabaseHandle): Promise<ServedApp> {
  const t = await createTestApp(env, database);
  const server = await listen(t.app);
  return {
    t,
    server,
    async gql(query, variables, options = {}) {
      const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
      if (options.token) headers.authorization = `Bearer ${options.token}`;
      const response = await fetch(`${server.url}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
      return { status: response.status, ...((await response.json()) as object) };
    },
    async close() {
      await server.close();
      await t.close();
    },
  };
}
