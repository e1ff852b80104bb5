/**
 * The servers under test, each a child process started as an operator would start it
 * (`node --import tsx <script>`), configured only by its environment, on a free port.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { killChild, tempDir, trackChild } from './lifecycle.js';
import { freePort } from '../test/support/free-port.js';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const STARTUP_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 15_000;
/** How much of a server's output is kept for error messages. */
const OUTPUT_KEPT = 16_384;

export interface ServerProcess {
  name: string;
  /** http://127.0.0.1:<port> */
  base: string;
  pid: number;
  /** Milliseconds from spawn to the first 200 on /health. */
  startupMs: number;
  /** Resident memory of the server process now, in MiB (null where /proc is not readable). */
  rssMiB(): number | null;
  /** SIGTERM, then SIGKILL if it has not exited in time; fails if it had exited on its own. */
  stop(): Promise<void>;
}

/** Thrown when a server does not start or dies on its own: the run is broken, not slow. */
export class ServerFailure extends Error {
  override name = 'ServerFailure';
}


/**
 * A small, explicit environment: nothing from the caller's shell (JWT_SECRET, DATABASE_URL,
 * NODE_ENV, RATE_LIMIT_…) can change what is measured.
 */
function childEnv(env: Record<string, string>): Record<string, string> {
  const inherited: Record<string, string> = {};
  for (const key of ['PATH', 'HOME', 'TMPDIR', 'LANG']) {
    const value = process.env[key];
    if (value !== undefined) inherited[key] = value;
  }
  return { ...inherited, HOST: '127.0.0.1', ...env };
}

function readRssMiB(pid: number): number | null {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** Starts `script` (relative to the project root) and waits until GET /health answers 200. */
export async function startServer(name: string, script: string, env: Record<string, string>): Promise<ServerProcess> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: PROJECT_ROOT,
    env: childEnv({ ...env, PORT: String(port) }),
    stdio: ['ignore', 'pipe', 'pipe'],
    // A process group of its own: the terminal's Ctrl-C reaches the orchestrator only, which
    // stops its servers itself, and clean-up can kill the whole group.
    detached: true,
  });
  trackChild(child);
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-OUTPUT_KEPT);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exited = false;
  const exit = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      resolve(signal ? `signal ${signal}` : `code ${code}`);
    });
  });
  const base = `http://127.0.0.1:${port}`;
  const failure = (what: string) =>
    new ServerFailure(`${name} (${script}) ${what}; its output:\n${output.trim() || '(none)'}`);

  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    if (exited) throw failure(`exited during start-up (${await exit})`);
    if (Date.now() > deadline) {
      killChild(child);
      throw failure(`did not answer /health within ${STARTUP_TIMEOUT_MS / 1000} s`);
    }
    try {
      const response = await fetch(`${base}/health`, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.status === 200) break;
    } catch {
      // not listening yet
    }
    await delay(100);
  }
  const startupMs = performance.now() - started;

  return {
    name,
    base,
    pid: child.pid!,
    startupMs,
    rssMiB: () => readRssMiB(child.pid!),
    stop: async () => {
      if (exited) throw failure(`exited on its own before the bench stopped it (${await exit})`);
      child.kill('SIGTERM');
      const timer = delay(STOP_TIMEOUT_MS, 'timeout');
      if ((await Promise.race([exit, timer])) === 'timeout') {
        killChild(child);
        await exit;
        console.error(`bench: ${name} did not stop within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM; killed`);
      }
    },
  };
}

/** Options that make authgraph a benchmark subject (no rate limits, quiet logs). */
export interface AuthgraphOptions {
  /** postgres:// URL; without it the server uses PGlite in its DATA_DIR. */
  databaseUrl?: string | undefined;
  /** Shared by every instance of the run so they can all decrypt the key set in the database. */
  keyEncryptionKey: string;
}

/** Starts `src/server.ts` with a DATA_DIR of its own. */
export function startAuthgraph(name: string, options: AuthgraphOptions): Promise<ServerProcess> {
  return startServer(name, 'src/server.ts', {
    DATA_DIR: tempDir(name.replace(/\W+/g, '-')),
    ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : {}),
    KEY_ENCRYPTION_KEY: options.keyEncryptionKey,
    RATE_LIMITS: 'off',
    LOG_LEVEL: 'warn',
  });
}
