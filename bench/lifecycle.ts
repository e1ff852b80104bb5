/**
 * What a bench run owns and must give back: child processes, one temporary directory, and any
 * clean-up registered along the way (PostgreSQL databases to drop). Released in reverse order
 * at the end of the run, when it fails, and on Ctrl-C or SIGTERM.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const children = new Set<ChildProcess>();
const cleanups: (() => Promise<void>)[] = [];
let root: string | undefined;
let cleaning: Promise<void> | undefined;
let interrupted = false;

/** True once Ctrl-C or SIGTERM has started the clean-up (what fails after that is its doing). */
export function wasInterrupted(): boolean {
  return interrupted;
}

/** Tracks a child spawned with `detached: true` (its own process group) until it exits. */
export function trackChild(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

/** SIGKILLs a tracked child's whole process group. */
export function killChild(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** A fresh directory under the run's temporary root (removed at clean-up). */
export function tempDir(name: string): string {
  root ??= mkdtempSync(path.join(os.tmpdir(), 'authgraph-bench-'));
  return mkdtempSync(path.join(root, `${name}-`));
}

/** Runs `fn` at clean-up (last registered, first run). */
export function deferCleanup(fn: () => Promise<void>): void {
  cleanups.push(fn);
}

/** Kills every child, runs the deferred clean-ups, removes the temporary root. Idempotent. */
export function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    for (const child of children) killChild(child);
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        console.error(`bench: clean-up step failed: ${String(err)}`);
      }
    }
    removeRoot();
  })();
  return cleaning;
}

function removeRoot(): void {
  if (root) rmSync(root, { recursive: true, force: true });
  root = undefined;
}

/**
 * Ctrl-C and SIGTERM clean up, then exit; whatever still runs when the process exits (an
 * uncaught error) is killed synchronously. Children run in process groups of their own, so a
 * terminal's Ctrl-C reaches only this process, which stops them itself.
 */
export function installExitHandlers(): void {
  const onSignal = (signal: NodeJS.Signals) => {
    interrupted = true;
    console.error(`\nbench: ${signal}, stopping servers and cleaning up`);
    const code = signal === 'SIGINT' ? 130 : 143;
    const force = setTimeout(() => process.exit(code), 20_000);
    force.unref();
    void cleanUp().finally(() => process.exit(code));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', () => {
    for (const child of children) killChild(child);
    removeRoot();
  });
}
