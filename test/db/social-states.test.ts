/**
 * A social sign-in state serves one completion: consumed by one DELETE … RETURNING, so of many
 * completions racing with one state exactly one gets it (meaningful on PostgreSQL, where they
 * run on separate connections at once; PGlite runs them one after another).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../../src/db/client.js';
import { consumeSocialState, saveSocialState } from '../../src/social/social-states.js';
import { openTestDatabase } from '../support/database.js';

let database: DatabaseHandle;
beforeAll(async () => {
  database = await openTestDatabase();
});
afterAll(async () => {
  await database?.close();
});

const pending = { provider: 'corp', codeVerifier: 'v'.repeat(43), nonce: 'n'.repeat(43), redirectUri: 'https://app.example/cb', userId: null };

describe('social sign-in states', () => {
  it('hands a state to exactly one of ten concurrent completions', async () => {
    const now = new Date();
    for (let round = 0; round < 5; round++) {
      const state = randomBytes(32).toString('base64url');
      await saveSocialState(database.db, state, pending, { now, ttlSeconds: 600 });
      const taken = await Promise.all(Array.from({ length: 10 }, () => consumeSocialState(database.db, state, now)));
      expect(taken.filter(Boolean), `round ${round}`).toHaveLength(1);
    }
  });

  it('keeps only a hash of the state', async () => {
    const state = randomBytes(32).toString('base64url');
    await saveSocialState(database.db, state, pending, { now: new Date(), ttlSeconds: 600 });
    const rows = await database.db.query.socialSignInStates.findMany();
    expect(JSON.stringify(rows)).not.toContain(state);
  });
});
