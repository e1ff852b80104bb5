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
  return { ms, cores, ceilingPerSec: cores / (ms / 1000), hash };
}
