import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { createBackgroundTasks } from '../../src/background-tasks.js';

const silent = () => pino({ level: 'silent' });

describe('background tasks', () => {
  it('starts the work only after the current turn, not while the caller is still answering', async () => {
    const tasks = createBackgroundTasks(silent());
    const work = vi.fn(async () => {});
    tasks.run('test', work);
    await Promise.resolve();
    expect(work).not.toHaveBeenCalled();
    await tasks.idle();
    expect(work).toHaveBeenCalledOnce();
  });

  it('idle() waits for running tasks and for the tasks they start', async () => {
    const tasks = createBackgroundTasks(silent());
    const done: string[] = [];
    tasks.run('outer', async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      tasks.run('inner', async () => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        done.push('inner');
      });
      done.push('outer');
    });
    await tasks.idle();
    expect(done).toEqual(['outer', 'inner']);
  });

  it('logs a failing task instead of throwing, and keeps running others', async () => {
    const logger = silent();
    const error = vi.spyOn(logger, 'error');
    const tasks = createBackgroundTasks(logger);
    const after = vi.fn(async () => {});
    tasks.run('failing', async () => {
      throw new Error('smtp down');
    });
    tasks.run('after', after);
    await expect(tasks.idle()).resolves.toBeUndefined();
    expect(after).toHaveBeenCalledOnce();
    expect(error).toHaveBeenCalledWith(expect.objectContaining({ task: 'failing' }), 'background task failed');
  });

  it('idle() resolves at once when nothing runs', async () => {
    await expect(createBackgroundTasks(silent()).idle()).resolves.toBeUndefined();
  });
});
