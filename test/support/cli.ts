/** Runs the authgraph CLI as an operator would: a child process of `npx tsx src/cli.ts`. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The project root (where package.json and src/cli.ts live). */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A JWT_SECRET long enough for HS256, for CLI processes. */
export const CLI_JWT_SECRET = 'cli-test-secret-cli-test-secret-cli-test-secret-0123';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall-clock milliseconds the process ran. */
  ms: number;
}

export interface CliOptions {
  /** Variables added to the environment; `undefined` removes one. */
  env?: Record<string, string | undefined>;
  /** Written to standard input, which is then closed. */
  input?: string;
  timeoutMs?: number;
}

/**
 * Runs `npx tsx src/cli.ts ...args` in the project root. DATABASE_URL is removed from the
 * inherited environment unless `env` sets it, so PGlite in DATA_DIR is used by default.
 */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const env: Record<string, string | undefined> = { ...process.env, JWT_SECRET: CLI_JWT_SECRET, LOG_LEVEL: 'warn' };
  delete env.DATABASE_URL;
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('npx', ['tsx', 'src/cli.ts', ...args], { cwd: PROJECT_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`CLI ${args.join(' ')} did not finish in ${options.timeoutMs ?? 90_000} ms\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 90_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      // npm may warn about the user's npmrc on stderr; that is not the CLI's output.
      const cleaned = stderr
        .split('\n')
        .filter((line) => !line.startsWith('npm warn'))
        .join('\n');
      resolve({ code, stdout, stderr: cleaned, ms: Date.now() - started });
    });
    child.stdin.end(options.input ?? '');
  });
}
