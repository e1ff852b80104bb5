import { randomBytes } from 'node:crypto';
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Raised when another live process holds the PGlite data directory. */
export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError';
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * Takes an exclusive lock file in `dataDir` for this process and returns its release function.
 *
 * The lock appears atomically with its content (a temp file holding our pid is hard-linked into
 * place), so no other process ever reads it half-written. A lock whose pid is dead is stale: it
 * is renamed away (atomic, so of two processes taking it over only one moves it), and what was
 * moved is checked to be the stale lock that was read. A lock held by a live process, or one
 * that cannot be read as a pid, is an error that says what to do.
 */
export function acquireDataDirLock(dataDir: string): () => void {
  const lockPath = path.join(dataDir, 'authgraph.lock');
  const mine = `${lockPath}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(mine, String(process.pid), { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkSync(mine, lockPath);
        return () => rmSync(lockPath, { force: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const content = readHolder(lockPath);
      if (content === null) continue; // released meanwhile: try again
      const holder = /^\d+$/.test(content) ? Number(content) : Number.NaN;
      // A lock bearing our own pid was left by an earlier process with the same pid (pid 1 in
      // a container restarted in place): within one process, openDatabase is called once.
      if (Number.isNaN(holder) || (holder !== process.pid && processIsAlive(holder))) {
        throw new DataDirLockedError(
          `The embedded database in ${dataDir} is in use${Number.isNaN(holder) ? '' : ` by process ${holder}`}. ` +
            'PGlite allows one process at a time: stop that process (the server) first, ' +
            `or run both against PostgreSQL by setting DATABASE_URL. If no authgraph process runs, delete ${lockPath}.`,
        );
      }
      const moved = `${lockPath}.stale.${randomBytes(4).toString('hex')}`;
      try {
        renameSync(lockPath, moved);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // another process took it over first
        throw err;
      }
      if (readHolder(moved) !== content) {
        // We moved a fresh lock another process had just taken: put it back and give up.
        try {
          linkSync(moved, lockPath);
        } finally {
          rmSync(moved, { force: true });
        }
        throw new DataDirLockedError(`The embedded database in ${dataDir} was just taken by another process.`);
      }
      rmSync(moved, { force: true });
    }
    throw new DataDirLockedError(`Could not lock ${dataDir}; delete ${lockPath} if no authgraph process runs.`);
  } finally {
    rmSync(mine, { force: true });
  }
}
