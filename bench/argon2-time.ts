/**
 * What login could reach at best on this machine: one argon2id hash per core at a time, with
 * the app's own parameters, timed here in the orchestrator before any server runs.
 */
import { availableParallelism } from 'node:os';
import argon2 from 'argon2';
import { ARGON2_PARAMS } from '../src/credentials/passwords.js';
import { quantile } from './load.js';

export interface Argon2Time {
  /** Median milliseconds of one hash, one at a time. */
  ms: number;
  cores: number;
  /** cores ÷ one hash time: the sign-ins per second argon2 alone allows. */
  ceilingPerSec: number;
  /**
   * Hashes per second measured with one running per core at once, and nothing else: what
   * argon2 alone reaches here (below the ceiling when the cores share a memory bus or are
   * hyper-threads of one another).
   */
  parallelPerSec: number;
  /** One hash made with the app's parameters (the scale run stores it in every row). */
  hash: string;
}

export async function measureArgon2(samples = 20): Promise<Argon2Time> {
  let hash = '';
  for (let i = 0; i < 3; i++) hash = await argon2.hash('warm-up-password', ARGON2_PARAMS);
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const started = performance.now();
    await argon2.hash(`bench-password-${i}`, ARGON2_PARAMS);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const ms = quantile(times, 0.5);
  const cores = availableParallelism();
  return { ms, cores, ceilingPerSec: cores / (ms / 1000), parallelPerSec: await hashesPerSecond(cores, samples * cores), hash };
}

/** Runs `total` hashes, `concurrency` at a time, and answers how many finished per second. */
async function hashesPerSecond(concurrency: number, total: number): Promise<number> {
  let started = 0;
  const begun = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < total) {
        started += 1;
        await argon2.hash(`bench-password-${started}`, ARGON2_PARAMS);
      }
    }),
  );
  return total / ((performance.now() - begun) / 1000);
}
