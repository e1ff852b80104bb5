/**
 * One GraphQL operation at a time over HTTP, for setting up sessions and for the propagation
 * run (the load itself goes through autocannon, bench/load.ts).
 */

/** A password that passes the server's policy. */
export const PASSWORD = 'vivid-Otter-42-lantern';

const PAYLOAD = '__typename ... on AuthPayload { accessToken refreshToken } ... on Error { code message }';

/** The operations the bench sends. */
export const OPERATIONS = {
  hello: '{ hello }',
  me: '{ me { id email roles } }',
  meId: '{ me { id } }',
  register: `mutation Register($input: RegisterInput!) { register(input: $input) { ${PAYLOAD} } }`,
  login: `mutation Login($input: LoginInput!) { login(input: $input) { ${PAYLOAD} } }`,
  refresh: `mutation Refresh($token: String) { refresh(refreshToken: $token) { ${PAYLOAD} } }`,
  logout: 'mutation Logout($token: String) { logout(refreshToken: $token) }',
} as const;

export interface Session {
  accessToken: string;
  refreshToken: string;
}

/** The JSON body of a GraphQL request. */
export function graphqlBody(query: string, variables: Record<string, unknown> = {}): string {
  return JSON.stringify({ query, variables });
}

/** True when a response body carries a GraphQL error with code UNAUTHENTICATED. */
export function isUnauthenticated(body: string): boolean {
  return body.includes('"UNAUTHENTICATED"');
}

/** POSTs one operation and reads the answer as text (callers decide what counts as success). */
export async function post(base: string, query: string, variables: Record<string, unknown> = {}, token?: string) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers,
    body: graphqlBody(query, variables),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: response.status, text: await response.text() };
}

async function signIn(base: string, field: 'register' | 'login', input: Record<string, unknown>): Promise<Session> {
  const { status, text } = await post(base, OPERATIONS[field], { input });
  const payload = (JSON.parse(text) as { data?: Record<string, { __typename?: string } & Partial<Session>> }).data?.[field];
  if (status !== 200 || payload?.__typename !== 'AuthPayload') {
    throw new Error(`${field} failed on ${base}: HTTP ${status} ${text.slice(0, 300)}`);
  }
  return { accessToken: payload.accessToken!, refreshToken: payload.refreshToken! };
}

/** Creates an account and returns its first session. */
export function register(base: string, email: string): Promise<Session> {
  return signIn(base, 'register', { email, password: PASSWORD });
}

/** Signs in and returns a new session. */
export function login(base: string, email: string): Promise<Session> {
  return signIn(base, 'login', { email, password: PASSWORD });
}

/** Runs `job(0)` … `job(count - 1)`, at most `concurrency` at once; the results in order. */
async function inParallel<T>(count: number, concurrency: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) results[i] = await job(i);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return results;
}

/**
 * `count` new sessions, signing in as the given users in turn, a few at a time (each costs an
 * argon2 verification, and the server's gate queues what it cannot run at once).
 */
export function loginMany(base: string, emails: readonly string[], count: number, concurrency = 4): Promise<Session[]> {
  return inParallel(count, concurrency, (i) => login(base, emails[i % emails.length]!));
}

/** Registers `count` users with distinct addresses; returns their emails and first sessions. */
export async function registerUsers(base: string, prefix: string, count: number, concurrency = 4) {
  const emails = Array.from({ length: count }, (_, i) => `${prefix}-${i}@bench.example.com`);
  const sessions = await inParallel(count, concurrency, (i) => register(base, emails[i]!));
  return { emails, sessions };
}
