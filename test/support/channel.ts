/** What the change channel carried while some work ran, as every instance's listener hears it. */
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { expect, vi } from 'vitest';
import { CHANGE_CHANNEL } from '../../src/db/change-feed.js';
import type { TestApp } from './app.js';
import { ARRIVES } from './viewer-events.js';

/** Every payload committed on CHANGE_CHANNEL while `work` ran, in commit order. */
export async function heardDuring(t: Pick<TestApp, 'database'>, work: () => Promise<unknown>): Promise<string[]> {
  const heard: string[] = [];
  const listener = await t.database.listen(CHANGE_CHANNEL, { onMessage: (payload) => heard.push(payload) });
  try {
    await work();
    // A marker sent after the work arrives after everything it committed (commit order).
    const marker = `test:${randomUUID()}`;
    await t.database.db.execute(sql`select pg_notify(${CHANGE_CHANNEL}, ${marker})`);
    await vi.waitFor(() => expect(heard).toContain(marker), ARRIVES);
    return heard.slice(0, heard.indexOf(marker));
  } finally {
    await listener.stop();
  }
}
