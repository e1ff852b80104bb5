/**
 * Start-up refusals of the real server process over its key-encryption key: production without
 * KEY_ENCRYPTION_KEY, and a KEY_ENCRYPTION_KEY that is not the one the stored keys were sealed
 * under. PGlite in DATA_DIR; under `npm run test:pg`, a scratch PostgreSQL database (DATABASE_URL).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { onPostgres } from '../support/database.js';
import { inspect } from '../support/forge.js';
import { GOOD_PASSWORD, ME, REGISTER, uniqueEmail } from '../support/operations.js';
import { createScratchDatabase, type ScratchDatabase } from '../support/pg-scratch.js';
import {
  freePort,
  gql,
  killGroup,
  killSpawnedServers,
  logRecords,
  spawnServer,
  stopServer,
  waitUntilHealthy,
  within,
  type Started,
} from '../support/server-process.js';

const TEST_TIMEOUT = 180_000;
const EXIT_TIMEOUT_MS = 60_000;
const SHUTDOWN_TIMEOUT_MS = 15_000;

const dataDirs: string[] = [];
const scratches: ScratchDatabase[] = [];
afterAll(async () => {
  killSpawnedServers();
  await delay(200);
  for (const scratch of scratches) await scratch.drop();
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh DATA_DIR, and under test:pg a fresh PostgreSQL database the server uses instead of PGlite. */
async function freshStorage(): Promise<{ dataDir: string; env: Record<string, string> }> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'authgraph-keys-start-'));
  dataDirs.push(dataDir);
  if (!onPostgres) return { dataDir, env: { DATA_DIR: dataDir } };
  const scratch = await createScratchDatabase();
  scratches.push(scratch);
  return { dataDir, env: { DATA_DIR: dataDir, DATABASE_URL: scratch.url } };
}

const keyEncryptionKey = () => randomBytes(32).toString('base64');

async function start(env: Record<string, string>): Promise<Started> {
  const port = await freePort();
  return spawnServer({ HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...env }, port);
}

/** Waits for a server that must refuse to start; gives back its exit and everything it printed. */
async function refusal(server: Started) {
  const exit = await within(server.exited, EXIT_TIMEOUT_MS);
  expect(exit, `still running\n${server.stdout()}\n${server.stderr()}`).not.toBeNull();
  return { exit, stderr: server.stderr(), lines: server.lines() };
}

/** Stack-trace frames ("    at fn (file:line)") anywhere in the output. */
const stackFrames = (lines: string[]) => lines.filter((line) => /^\s+at\s/.test(line) || /\\n\s+at\s/.test(line));

describe(`start-up refusals over KEY_ENCRYPTION_KEY (${onPostgres ? 'PostgreSQL' : 'PGlite'})`, () => {
  it(
    'refuses production without KEY_ENCRYPTION_KEY: exit 1, a message naming it, no stack trace, no key generated; with it the same configuration starts',
    async () => {
      const { dataDir, env } = await freshStorage();
      // Everything else production needs is given (SMTP_URL is not contacted at start-up).
      const production = { ...env, NODE_ENV: 'production', SMTP_URL: 'smtp://127.0.0.1:2525', RP_ID: 'app.example', RP_ORIGINS: 'https://app.example' };
      const refused = await start(production);
      try {
        const { exit, stderr, lines } = await refusal(refused);
        expect(exit).toEqual({ code: 1, signal: null });
        expect(stderr).toMatch(/^authgraph cannot start: KEY_ENCRYPTION_KEY is required when NODE_ENV=production/m);
        expect(stackFrames(lines)).toEqual([]);
        expect(existsSync(path.join(dataDir, 'key-encryption-key'))).toBe(false);
      } finally {
        killGroup(refused.child);
      }

      const started = await start({ ...production, KEY_ENCRYPTION_KEY: keyEncryptionKey() });
      try {
        await waitUntilHealthy(started);
        const { exit } = await stopServer(started, SHUTDOWN_TIMEOUT_MS);
        expect(exit).toEqual({ code: 0, signal: null });
        expect(existsSync(path.join(dataDir, 'key-encryption-key'))).toBe(false);
      } finally {
        killGroup(started.child);
      }
    },
    TEST_TIMEOUT,
  );

  it(
    'refuses a KEY_ENCRYPTION_KEY that does not decrypt the stored keys, saying so without a stack trace; the right key then starts and earlier tokens verify',
    async () => {
      const { env } = await freshStorage();
      const right = keyEncryptionKey();
      // A rotation is due at every start (interval 1 s): a start under the wrong key must not
      // write a key sealed under it before refusing, or the right key could not start after it.
      const common = { ...env, KEY_ROTATION_INTERVAL: '1' };

      const first = await start({ ...common, KEY_ENCRYPTION_KEY: right });
      let session: { accessToken: string; userId: string; kid: string };
      try {
        await waitUntilHealthy(first);
        const listening = logRecords(first).find((record) => record.msg === 'authgraph is listening');
        expect(listening?.database).toBe(onPostgres ? 'postgres' : 'pglite');
        const registered = await gql(first.base, REGISTER, { input: { email: uniqueEmail('kek'), password: GOOD_PASSWORD } });
        const payload = registered.body.data?.register;
        expect(payload?.__typename, JSON.stringify(registered.body)).toBe('AuthPayload');
        const { header } = inspect(payload.accessToken);
        expect(header).toMatchObject({ alg: 'ES256', kid: expect.any(String) });
        session = { accessToken: payload.accessToken, userId: payload.user.id, kid: header.kid as string };
        const { exit } = await stopServer(first, SHUTDOWN_TIMEOUT_MS);
        expect(exit).toEqual({ code: 0, signal: null });
      } finally {
        killGroup(first.child);
      }

      const wrong = keyEncryptionKey();
      const refused = await start({ ...common, KEY_ENCRYPTION_KEY: wrong });
      try {
        const { exit, stderr, lines } = await refusal(refused);
        expect(exit).toEqual({ code: 1, signal: null });
        expect(stderr).toMatch(/^authgraph cannot start: KEY_ENCRYPTION_KEY does not decrypt the signing key \S+ stored in the database/m);
        expect(stackFrames(lines)).toEqual([]);
        expect(lines.join('\n')).not.toContain(wrong);
      } finally {
        killGroup(refused.child);
      }

      const again = await start({ ...common, KEY_ENCRYPTION_KEY: right });
      try {
        await waitUntilHealthy(again);
        const me = await gql(again.base, ME, {}, session.accessToken);
        expect(me.body.errors, JSON.stringify(me.body)).toBeUndefined();
        expect(me.body.data.me).toMatchObject({ id: session.userId });
        const jwks = (await (await fetch(`${again.base}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
        expect(jwks.keys.map((key) => key.kid)).toContain(session.kid);
        const { exit } = await stopServer(again, SHUTDOWN_TIMEOUT_MS);
        expect(exit).toEqual({ code: 0, signal: null });
      } finally {
        killGroup(again.child);
      }
    },
    TEST_TIMEOUT,
  );
});
