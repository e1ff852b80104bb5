import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../config.js';
import type { Logger } from '../logger.js';

function readSecretFile(file: string): string | null {
  try {
    const secret = readFileSync(file, 'utf8').trim();
    if (secret === '') throw new ConfigError(`${file} is empty: delete it to have a new secret generated.`);
    return secret;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * A development secret kept in DATA_DIR (mode 0600): read when it exists, else generated once
 * with `generate` and announced by `warning`. Never used in production (callers refuse there).
 */
export function readOrCreateDevSecret(
  options: { dataDir: string; file: string; generate: () => string; warning: string },
  logger: Logger,
): string {
  const file = path.join(options.dataDir, options.file);
  const existing = readSecretFile(file);
  if (existing) return existing;
  mkdirSync(options.dataDir, { recursive: true });
  try {
    writeFileSync(file, options.generate(), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another process (the CLI, a second server) created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return readSecretFile(file) ?? readOrCreateDevSecret(options, logger);
  }
  logger.warn({ file }, options.warning);
  return readSecretFile(file)!;
}
