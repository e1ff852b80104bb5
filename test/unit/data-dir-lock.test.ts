import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireDataDirLock, DataDirLockedError } from '../../src/db/data-dir-lock.js';

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'authgraph-lock-'));
  tempDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

const lockFile = (dir: string) => path.join(dir, 'authgraph.lock');

type Child = ChildProcessByStdio<Writable, Readable, null>;

/** The first line a child process prints (empty if it exits first). */
function firstLine(child: Child): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (out.includes('\n')) resolve(out.split('\n')[0]!.trim());
    });
    child.once('close', () => resolve(out.trim()));
  });
}

/** Closes a child's stdin (its signal to exit) and waits for it; kills it if it lingers. */
function endChild(child: Child): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    child.stdin.end();
  });
}

/** A pid that is free on a default Linux (pid_max 32768); the test checks it is dead before relying on it. */
const DEAD_PID = 999_999;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

describe('data directory lock', () => {
  it('takes a free data directory and records this process id in a 0600 lock file', () => {
    const dir = tempDir();
    const release = acquireDataDirLock(dir);
    try {
      expect(readFileSync(lockFile(dir), 'utf8')).toBe(String(process.pid));
      expect(statSync(lockFile(dir)).mode & 0o777).toBe(0o600);
    } finally {
      release();
    }
  });

  it('removes the lock file on release', () => {
    const dir = tempDir();
    const release = acquireDataDirLock(dir);
    release();
    expect(existsSync(lockFile(dir))).toBe(false);
  });

  it('can be taken again after release', () => {
    const dir = tempDir();
    acquireDataDirLock(dir)();
    const release = acquireDataDirLock(dir);
    expect(readFileSync(lockFile(dir), 'utf8')).toBe(String(process.pid));
    release();
  });

  it('refuses a directory held by another live process with a DataDirLockedError saying what to do', () => {
    const dir = tempDir();
    const holder = process.ppid;
    expect(isAlive(holder)).toBe(true);
    writeFileSync(lockFile(dir), String(holder));
    let caught: unknown;
    try {
      acquireDataDirLock(dir)();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DataDirLockedError);
    const message = (caught as Error).message;
    expect(message).toContain(String(holder));
    expect(message).toContain(dir);
    expect(message).toMatch(/stop/i);
    expect(message).toContain('DATABASE_URL');
  });

  it('leaves the live holder\'s lock file untouched when refusing', () => {
    const dir = tempDir();
    writeFileSync(lockFile(dir), String(process.ppid));
    expect(() => acquireDataDirLock(dir)).toThrow(DataDirLockedError);
    expect(readFileSync(lockFile(dir), 'utf8')).toBe(String(process.ppid));
  });

  it('refuses a directory held by pid 1, which is alive even when owned by another user (EPERM)', () => {
    const dir = tempDir();
    writeFileSync(lockFile(dir), '1');
    expect(() => acquireDataDirLock(dir)).toThrow(DataDirLockedError);
  });

  it('takes over a stale lock left by a process that no longer exists', () => {
    const dir = tempDir();
    expect(isAlive(DEAD_PID)).toBe(false);
    writeFileSync(lockFile(dir), String(DEAD_PID));
    const release = acquireDataDirLock(dir);
    expect(readFileSync(lockFile(dir), 'utf8')).toBe(String(process.pid));
    release();
    expect(existsSync(lockFile(dir))).toBe(false);
  });

  // The lock is linked into place with its pid already written, so it is never seen empty.
  // Content that is not a pid is not ours to judge: refused, with the file named for removal.
  it.each([
    ['content that is not a pid', 'garbage'],
    ['an empty lock file', ''],
  ])('refuses %s, naming the file to delete, and leaves it alone', (_name, content) => {
    const dir = tempDir();
    writeFileSync(lockFile(dir), content);
    expect(() => acquireDataDirLock(dir)).toThrow(DataDirLockedError);
    expect(() => acquireDataDirLock(dir)).toThrow(`delete ${lockFile(dir)}`);
    expect(readFileSync(lockFile(dir), 'utf8')).toBe(content);
  });

  it('leaves no temporary files behind, whether it takes the lock or not', () => {
    const dir = tempDir();
    const release = acquireDataDirLock(dir);
    writeFileSync(lockFile(dir), String(process.ppid));
    expect(() => acquireDataDirLock(dir)).toThrow(DataDirLockedError);
    expect(readdirSync(dir)).toEqual(['authgraph.lock']);
    release();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('lets exactly one of many racing processes take a fresh or stale lock', async () => {
    for (const stale of [false, true]) {
      const dir = tempDir();
      if (stale) writeFileSync(lockFile(dir), '999999');
      // The winner holds the lock (stays alive) until stdin closes, which happens only once
      // every process has answered: however slowly they start, none finds the winner gone and
      // its lock stale.
      const script = `
        import { acquireDataDirLock } from ${JSON.stringify(path.resolve('src/db/data-dir-lock.ts'))};
        try { acquireDataDirLock(process.argv.at(-1)); console.log('locked'); }
        catch (e) { console.log(e.name === 'DataDirLockedError' ? 'refused' : 'error ' + e.message); }
        process.stdin.resume();
        process.stdin.on('end', () => process.exit(0));
      `;
      const children = Array.from({ length: 6 }, () =>
        spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script, dir], {
          cwd: path.resolve('.'),
          stdio: ['pipe', 'pipe', 'inherit'],
        }),
      );
      try {
        const outcomes = await Promise.all(children.map(firstLine));
        expect(outcomes.filter((o) => o === 'locked'), `stale=${stale}: ${outcomes.join(',')}`).toHaveLength(1);
      } finally {
        await Promise.all(children.map(endChild));
      }
    }
  }, 120_000);
});
