import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db/client.js';
import { refreshTokens, revokedTokens, sessions, users } from '../src/db/schema.js';
import { printSchemaSdl } from '../src/graphql/schema.js';
import { onPostgres, postgresUrl } from './support/database.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsxBin = path.join(root, 'node_modules', '.bin', 'tsx');
const cliPath = path.join(root, 'src', 'cli.ts');
const JWT_SECRET = 'cli-test-secret-cli-test-secret-0123456789';
/** Each run starts tsx and, for most commands, PGlite: seconds, not milliseconds. */
const CLI_TIMEOUT = 90_000;

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'authgraph-cli-'));
  tempDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `npx tsx src/cli.ts <args>` from the project root (or `tsx <abs path>` from another
 * directory), on PGlite in `dataDir` unless `env` says otherwise.
 */
function runCli(
  args: string[],
  options: { dataDir?: string; env?: Record<string, string | undefined>; cwd?: string } = {},
): Promise<CliResult> {
  const env: Record<string, string | undefined> = { ...process.env, JWT_SECRET, DATA_DIR: options.dataDir ?? tempDir() };
  delete env.DATABASE_URL;
  Object.assign(env, options.env);
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  const [command, commandArgs] =
    options.cwd && options.cwd !== root ? [tsxBin, [cliPath, ...args]] : ['npx', ['tsx', 'src/cli.ts', ...args]];
  return new Promise((resolve) => {
    execFile(
      command,
      commandArgs,
      { cwd: options.cwd ?? root, env: env as NodeJS.ProcessEnv, timeout: CLI_TIMEOUT - 5000, maxBuffer: 10 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The issue-2 counts of `purge` output ("purged N revoked access tokens, M refresh tokens and sessions…"). */
function purgedCounts(stdout: string): { revokedTokens: number; sessions: number } {
  const match = /^purged (\d+) revoked access tokens, (\d+) refresh tokens and sessions\b/m.exec(stdout);
  if (!match) throw new Error(`unexpected purge output: ${JSON.stringify(stdout)}`);
  return { revokedTokens: Number(match[1]), sessions: Number(match[2]) };
}

/** A Node stack frame line, e.g. "    at main (file:///…/cli.ts:12:3)". */
const STACK_FRAME = /^\s+at .+[:(]/m;

/** Everything but npm's own notices ("npm warn …"), which npx may print. */
const withoutNpmNotices = (stderr: string) =>
  stderr
    .split('\n')
    .filter((line) => !/^npm (warn|notice)/i.test(line))
    .join('\n')
    .trim();

describe('authgraph CLI', () => {
  it(
    'lists migrate, print-schema and purge in --help and exits 0',
    async () => {
      const result = await runCli(['--help']);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^\s+migrate\b/m);
      expect(result.stdout).toMatch(/^\s+print-schema\b/m);
      expect(result.stdout).toMatch(/^\s+purge\b/m);
    },
    CLI_TIMEOUT,
  );

  it(
    'prints the sorted SDL with print-schema',
    async () => {
      const result = await runCli(['print-schema']);
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(printSchemaSdl());
    },
    CLI_TIMEOUT,
  );

  it(
    'writes the same SDL to schema.graphql in the working directory with print-schema --write',
    async () => {
      const cwd = tempDir();
      const printed = await runCli(['print-schema'], { cwd });
      const written = await runCli(['print-schema', '--write'], { cwd });
      expect(written.code).toBe(0);
      expect(written.stdout).toBe('');
      expect(printed.stdout.startsWith('"""')).toBe(true);
      expect(readFileSync(path.join(cwd, 'schema.graphql'), 'utf8')).toBe(printed.stdout);
    },
    CLI_TIMEOUT,
  );

  it(
    'applies migrations with migrate and exits 0, also when run again',
    async () => {
      const dataDir = tempDir();
      const first = await runCli(['migrate'], { dataDir });
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout.trim()).toBe('migrations applied');
      const second = await runCli(['migrate'], { dataDir });
      expect(second.code, second.stderr).toBe(0);
    },
    CLI_TIMEOUT,
  );

  it(
    'purges an empty database, printing zero counts, and exits 0',
    async () => {
      const result = await runCli(['purge']);
      expect(result.code, result.stderr).toBe(0);
      expect(purgedCounts(result.stdout)).toEqual({ revokedTokens: 0, sessions: 0 });
    },
    CLI_TIMEOUT,
  );

  it(
    'purges expired revocation entries, refresh tokens and sessions and prints how many',
    async () => {
      const dataDir = tempDir();
      expect((await runCli(['migrate'], { dataDir })).code).toBe(0);

      // Seed the PGlite files directly (the CLI has exited, so the lock is free).
      const hour = 3_600_000;
      const now = Date.now();
      const at = (offset: number) => new Date(now + offset);
      const handle = await openDatabase({ dataDir });
      try {
        const db = handle.db;
        const [user] = await db
          .insert(users)
          .values({ email: `cli-${randomBytes(4).toString('hex')}@example.com`, passwordHash: 'x' })
          .returning();
        const [dead, live] = await db
          .insert(sessions)
          .values([
            { userId: user!.id, lastUsedAt: at(-48 * hour), createdAt: at(-48 * hour), expiresAt: at(-hour) },
            { userId: user!.id, lastUsedAt: at(0), createdAt: at(0), expiresAt: at(48 * hour) },
          ])
          .returning();
        await db.insert(refreshTokens).values([
          { id: 'cli-expired', sessionId: dead!.id, secretHash: 'x', expiresAt: at(-hour) },
          { id: 'cli-live', sessionId: live!.id, secretHash: 'x', expiresAt: at(24 * hour) },
        ]);
        await db.insert(revokedTokens).values([
          { jti: 'cli-expired-1', expiresAt: at(-hour) },
          { jti: 'cli-expired-2', expiresAt: at(-2 * hour) },
          { jti: 'cli-live', expiresAt: at(hour) },
        ]);
      } finally {
        await handle.close();
      }

      const purge = await runCli(['purge'], { dataDir });
      expect(purge.code, purge.stderr).toBe(0);
      expect(purgedCounts(purge.stdout)).toEqual({ revokedTokens: 2, sessions: 2 });

      const again = await runCli(['purge'], { dataDir });
      expect(again.code, again.stderr).toBe(0);
      expect(purgedCounts(again.stdout)).toEqual({ revokedTokens: 0, sessions: 0 });
    },
    CLI_TIMEOUT * 2,
  );

  it(
    'exits non-zero on an unknown command',
    async () => {
      const result = await runCli(['frobnicate']);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('frobnicate');
    },
    CLI_TIMEOUT,
  );

  it(
    'prints a message naming PORT and exits 1 without a stack trace when PORT=abc',
    async () => {
      const result = await runCli(['migrate'], { env: { PORT: 'abc' } });
      expect(result.code).toBe(1);
      const stderr = withoutNpmNotices(result.stderr);
      expect(stderr).toMatch(/\bPORT\b/);
      expect(stderr).not.toMatch(STACK_FRAME);
      expect(result.stdout).toBe('');
    },
    CLI_TIMEOUT,
  );

  it(
    'prints a message naming JWT_SECRET and exits 1 without a stack trace when the secret is too short',
    async () => {
      const result = await runCli(['migrate'], { env: { JWT_SECRET: 'short' } });
      expect(result.code).toBe(1);
      const stderr = withoutNpmNotices(result.stderr);
      expect(stderr).toContain('JWT_SECRET');
      expect(stderr).not.toMatch(STACK_FRAME);
    },
    CLI_TIMEOUT,
  );

  it(
    'refuses a DATA_DIR held by another live process, saying to stop it or use DATABASE_URL, without a stack trace',
    async () => {
      const dataDir = tempDir();
      writeFileSync(path.join(dataDir, 'authgraph.lock'), String(process.pid));
      const result = await runCli(['purge'], { dataDir });
      expect(result.code).toBe(1);
      const stderr = withoutNpmNotices(result.stderr);
      expect(stderr).toContain(String(process.pid));
      expect(stderr).toContain('DATABASE_URL');
      expect(stderr).not.toMatch(STACK_FRAME);
      // The holder's lock is left alone.
      expect(readFileSync(path.join(dataDir, 'authgraph.lock'), 'utf8')).toBe(String(process.pid));
    },
    CLI_TIMEOUT,
  );

  it.runIf(onPostgres)(
    'migrates and purges a PostgreSQL database given by DATABASE_URL',
    async () => {
      const name = `authgraph_cli_${randomBytes(6).toString('hex')}`;
      const admin = postgres(postgresUrl!, { max: 1, onnotice: () => {} });
      await admin.unsafe(`create database ${name}`);
      try {
        const url = new URL(postgresUrl!);
        url.pathname = `/${name}`;
        const env = { DATABASE_URL: url.toString() };
        const migrate = await runCli(['migrate'], { env });
        expect(migrate.code, migrate.stderr).toBe(0);
        const purge = await runCli(['purge'], { env });
        expect(purge.code, purge.stderr).toBe(0);
        expect(purgedCounts(purge.stdout)).toEqual({ revokedTokens: 0, sessions: 0 });
        const client = postgres(url.toString(), { max: 1, onnotice: () => {} });
        try {
          const [row] = await client`select count(*)::int as n from roles where name = 'user'`;
          expect(row!.n).toBe(1);
        } finally {
          await client.end();
        }
      } finally {
        await admin.unsafe(`drop database if exists ${name} with (force)`);
        await admin.end();
      }
    },
    CLI_TIMEOUT * 2,
  );
});
