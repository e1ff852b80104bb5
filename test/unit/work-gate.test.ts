import { afterEach, describe, expect, it, vi } from 'vitest';
import { WorkGate } from '../../src/abuse/work-gate.js';
import { RateLimitedError } from '../../src/errors.js';

/** A job the test finishes by hand, recording when it started. */
interface Job {
  started: boolean;
  finish(value?: string): void;
  fail(error: Error): void;
  run: () => Promise<string>;
}

function job(name: string, log: string[] = []): Job {
  let resolve!: (value: string) => void;
  let reject!: (error: Error) => void;
  const done = new Promise<string>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const j: Job = {
    started: false,
    finish: (value = name) => resolve(value),
    fail: (error) => reject(error),
    run: () => {
      j.started = true;
      log.push(`start ${name}`);
      return done;
    },
  };
  return j;
}

/** Lets every queued promise callback run. */
const settle = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

/** The state of a promise right now, without waiting for it. */
async function stateOf(promise: Promise<unknown>): Promise<'pending' | 'fulfilled' | 'rejected'> {
  const marker = Symbol('pending');
  try {
    const value = await Promise.race([promise, Promise.resolve(marker)]);
    return value === marker ? 'pending' : 'fulfilled';
  } catch {
    return 'rejected';
  }
}

afterEach(() => {
  vi.useRealTimers();
});

describe('WorkGate (argon2 bound)', () => {
  it('runs at most maxConcurrency jobs at once', async () => {
    const gate = new WorkGate({ maxConcurrency: 2, queueLimit: 10, queueTimeoutMs: 60_000 });
    let running = 0;
    let peak = 0;
    const finishers: Array<() => void> = [];
    const results = Array.from({ length: 6 }, (_, i) =>
      gate.run(async () => {
        running += 1;
        peak = Math.max(peak, running);
        await new Promise<void>((resolve) => finishers.push(resolve));
        running -= 1;
        return i;
      }),
    );
    await settle();
    expect(running).toBe(2);
    expect(finishers).toHaveLength(2);
    // Finish jobs one at a time: a slot never holds more than one job.
    while (finishers.length > 0) {
      finishers.shift()!();
      await settle();
      expect(running).toBeLessThanOrEqual(2);
    }
    expect(await Promise.all(results)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(peak).toBe(2);
  });

  it('runs queued jobs, in arrival order, as slots free up', async () => {
    const gate = new WorkGate({ maxConcurrency: 1, queueLimit: 5, queueTimeoutMs: 60_000 });
    const log: string[] = [];
    const [a, b, c] = [job('a', log), job('b', log), job('c', log)];
    const ra = gate.run(a.run);
    const rb = gate.run(b.run);
    const rc = gate.run(c.run);
    await settle();
    expect(log).toEqual(['start a']);
    expect(b.started).toBe(false);

    a.finish();
    expect(await ra).toBe('a');
    await settle();
    expect(log).toEqual(['start a', 'start b']);
    expect(c.started).toBe(false);

    b.finish();
    expect(await rb).toBe('b');
    await settle();
    expect(log).toEqual(['start a', 'start b', 'start c']);
    c.finish();
    expect(await rc).toBe('c');
  });

  it('refuses a job at once with RateLimitedError when the queue is full', async () => {
    const gate = new WorkGate({ maxConcurrency: 1, queueLimit: 2, queueTimeoutMs: 60_000 });
    const [a, b, c, d] = [job('a'), job('b'), job('c'), job('d')];
    const ra = gate.run(a.run);
    const rb = gate.run(b.run);
    const rc = gate.run(c.run);
    const rd = gate.run(d.run); // one running, two waiting: no room
    await settle();
    expect(await stateOf(rd)).toBe('rejected');
    await expect(rd).rejects.toBeInstanceOf(RateLimitedError);
    await expect(rd).rejects.toMatchObject({ code: 'RATE_LIMITED', retryAfter: 1 });
    expect(d.started).toBe(false);
    // The refused job took nothing from the others.
    a.finish();
    b.finish();
    c.finish();
    expect(await Promise.all([ra, rb, rc])).toEqual(['a', 'b', 'c']);
  });

  it('with queueLimit 0, refuses every job beyond maxConcurrency at once', async () => {
    const gate = new WorkGate({ maxConcurrency: 2, queueLimit: 0, queueTimeoutMs: 60_000 });
    const jobs = [job('a'), job('b'), job('c')];
    const runs = jobs.map((j) => gate.run(j.run));
    await settle();
    expect(await stateOf(runs[2]!)).toBe('rejected');
    await expect(runs[2]!).rejects.toBeInstanceOf(RateLimitedError);
    jobs[0]!.finish();
    jobs[1]!.finish();
    expect(await Promise.all(runs.slice(0, 2))).toEqual(['a', 'b']);
  });

  it('refuses a job with RateLimitedError once it has waited longer than queueTimeoutMs (fake timers)', async () => {
    vi.useFakeTimers();
    const gate = new WorkGate({ maxConcurrency: 1, queueLimit: 5, queueTimeoutMs: 500 });
    const [a, b] = [job('a'), job('b')];
    const ra = gate.run(a.run);
    const rb = gate.run(b.run);
    rb.catch(() => {}); // observed below
    await vi.advanceTimersByTimeAsync(499);
    expect(await stateOf(rb)).toBe('pending');
    await vi.advanceTimersByTimeAsync(2);
    expect(await stateOf(rb)).toBe('rejected');
    await expect(rb).rejects.toBeInstanceOf(RateLimitedError);
    expect(b.started).toBe(false);
    // The timed-out job left the queue: when a finishes, the slot is free for a new job at once.
    a.finish();
    expect(await ra).toBe('a');
    const c = job('c');
    const rc = gate.run(c.run);
    await settle();
    expect(c.started).toBe(true);
    c.finish();
    expect(await rc).toBe('c');
    expect(b.started).toBe(false);
  });

  it('refuses a job that waited too long (real short timers)', async () => {
    const gate = new WorkGate({ maxConcurrency: 1, queueLimit: 5, queueTimeoutMs: 30 });
    const a = job('a');
    const ra = gate.run(a.run);
    const started = Date.now();
    await expect(gate.run(async () => 'late')).rejects.toBeInstanceOf(RateLimitedError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    a.finish();
    expect(await ra).toBe('a');
  });

  it('a queued job that gets its slot in time is not refused later by its timer', async () => {
    vi.useFakeTimers();
    const gate = new WorkGate({ maxConcurrency: 1, queueLimit: 5, queueTimeoutMs: 100 });
    const [a, b] = [job('a'), job('b')];
    const ra = gate.run(a.run);
    const rb = gate.run(b.run);
    await vi.advanceTimersByTimeAsync(50);
    a.finish();
    await ra;
    await settle();
    expect(b.started).toBe(true);
    await vi.advanceTimersByTimeAsync(1000); // past b's old deadline
    b.finish();
    expect(await rb).toBe('b');
  });

  it('a failing job frees its slot for the next one', async () => {
    const gate = new WorkGate({ maxConcurrency: 1, queueLimit: 5, queueTimeoutMs: 60_000 });
    const [a, b] = [job('a'), job('b')];
    const ra = gate.run(a.run);
    const rb = gate.run(b.run);
    await settle();
    expect(b.started).toBe(false);
    a.fail(new Error('argon2 blew up'));
    await expect(ra).rejects.toThrow('argon2 blew up');
    await settle();
    expect(b.started).toBe(true);
    b.finish();
    expect(await rb).toBe('b');
  });

  it('a job that throws synchronously frees its slot too', async () => {
    const gate = new WorkGate({ maxConcurrency: 1, queueLimit: 0, queueTimeoutMs: 60_000 });
    await expect(
      gate.run(() => {
        throw new Error('sync failure');
      }),
    ).rejects.toThrow('sync failure');
    // queueLimit 0: a leaked slot would refuse this one at once.
    expect(await gate.run(async () => 'ok')).toBe('ok');
  });

  it('after a burst of failures and refusals, the full capacity is available again', async () => {
    const gate = new WorkGate({ maxConcurrency: 3, queueLimit: 2, queueTimeoutMs: 60_000 });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        gate.run(async () => {
          await new Promise((resolve) => setTimeout(resolve, 5));
          if (i % 2 === 0) throw new Error(`job ${i} failed`);
          return i;
        }),
      ),
    );
    const refused = outcomes.filter((o) => o.status === 'rejected' && o.reason instanceof RateLimitedError);
    expect(refused).toHaveLength(5); // 3 running + 2 waiting were admitted
    // Now exactly maxConcurrency jobs start at once, with no queue room used.
    const jobs = [job('x'), job('y'), job('z')];
    const runs = jobs.map((j) => gate.run(j.run));
    await settle();
    expect(jobs.map((j) => j.started)).toEqual([true, true, true]);
    jobs.forEach((j) => j.finish());
    expect(await Promise.all(runs)).toEqual(['x', 'y', 'z']);
  });
});
