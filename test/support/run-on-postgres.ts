/**
 * `npm run test:pg`: runs the whole suite against a real PostgreSQL server. Each test file
 * creates (and drops) a database of its own there. Fails at once if the server is unreachable.
 */
import { spawnSync } from 'node:child_process';
import postgres from 'postgres';

const url = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const probe = postgres(url, { max: 1, connect_timeout: 5, onnotice: () => {} });
try {
  await probe`select 1`;
} catch (err) {
  console.error(`test:pg: cannot reach PostgreSQL at TEST_DATABASE_URL (${(err as Error).message}).`);
  process.exit(1);
} finally {
  await probe.end();
}

const result = spawnSync('npx', ['vitest', 'run', ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, AUTHGRAPH_TEST_PG_URL: url },
});
process.exit(result.status ?? 1);
