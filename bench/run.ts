/**
 * `npm run bench`: throughput of the main request paths on a real port, measured in one run
 * and reported as ratios to a bare health check, plus memory growth under load. Runs on
 * PGlite, or on PostgreSQL when AUTHGRAPH_TEST_PG_URL names a server (a fresh database is
 * created and dropped). Rate limits are off: this measures the server, not the limiter.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import autocannon from 'autocannon';
import { createTestApp } from '../test/support/app.js';
import { GOOD_PASSWORD, registerUser } from '../test/support/operations.js';

const DURATION = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = 10;

const t = await createTestApp({ RATE_LIMITS: 'off' });
// The frozen test clock would expire nothing; the benchmark wants real time.
t.clock.now = () => new Date();
const server = createServer(t.app);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const user = await registerUser(t);
const json = { 'content-type': 'application/json' };
const meBody = JSON.stringify({ query: '{ me { id email roles } }' });
const loginBody = JSON.stringify({
  query: 'mutation($i: LoginInput!) { login(input: $i) { __typename } }',
  variables: { i: { email: user.email, password: GOOD_PASSWORD } },
});

async function measure(title: string, path: string, options: Partial<autocannon.Options>): Promise<number> {
  const result = await autocannon({ url: `${base}${path}`, connections: CONNECTIONS, duration: DURATION, ...options });
  const bad = result.non2xx + result.errors;
  console.log(`${title.padEnd(34)} ${result.requests.average.toFixed(0).padStart(7)} req/s  p99 ${result.latency.p99} ms${bad ? `  (${bad} failed)` : ''}`);
  return result.requests.average;
}

const rssBefore = process.memoryUsage().rss;
console.log(`authgraph bench on ${t.database.kind}, ${CONNECTIONS} connections, ${DURATION} s each\n`);
const health = await measure('GET /health (baseline)', '/health', { method: 'GET' });
const anonymous = await measure('me without a token', '/graphql', { method: 'POST', headers: json, body: meBody });
const me = await measure('me with a valid access token', '/graphql', {
  method: 'POST',
  headers: { ...json, authorization: `Bearer ${user.accessToken}` },
  body: meBody,
});
const login = await measure('login (argon2id verify)', '/graphql', { method: 'POST', headers: json, body: loginBody });
const rssAfter = process.memoryUsage().rss;

console.log('\nratios to the baseline, measured in this run:');
console.log(`  me, anonymous     ${(anonymous / health).toFixed(2)}`);
console.log(`  me, authenticated ${(me / health).toFixed(2)}  (signature + revocation check + user lookup)`);
console.log(`  login             ${(login / health).toFixed(3)}  (bounded by argon2: m=19 MiB, t=2)`);
console.log(`memory: RSS ${(rssBefore / 2 ** 20).toFixed(0)} MiB before, ${(rssAfter / 2 ** 20).toFixed(0)} MiB after the load`);

server.close();
await t.close();
