/**
 * Codes spent at most once under concurrency, on PostgreSQL (PGlite is one connection and would
 * run the submissions one after another): of simultaneous submissions of one TOTP code or one
 * recovery code, exactly one succeeds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onPostgres } from '../support/database.js';
import { registerUser } from '../support/operations.js';
import { serveTestApp, type ServedApp } from '../support/served.js';
import { enableTotp, REAUTHENTICATE, totpCode } from './support.js';

const SUBMISSIONS = 12;

describe.runIf(onPostgres)('second-factor codes racing on PostgreSQL', () => {
  let s: ServedApp;
  beforeAll(async () => {
    s = await serveTestApp();
  });
  afterAll(async () => {
    await s?.close();
  });

  async function race(token: string, code: string) {
    const answers = await Promise.all(Array.from({ length: SUBMISSIONS }, () => s.gql(REAUTHENTICATE, { code }, { token })));
    return answers.map((res) => res.data?.reauthenticate.__typename ?? JSON.stringify(res.errors));
  }

  it('accepts one of many simultaneous submissions of one TOTP code', async () => {
    const user = await registerUser(s);
    const { secret } = await enableTotp(s, user.accessToken);
    s.t.clock.advance(90); // past the confirmation code's window
    const outcomes = await race(user.accessToken, totpCode(secret, s.t.clock.now()));
    expect(outcomes.filter((o) => o === 'Reauthentication')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'InvalidSecondFactorError')).toHaveLength(SUBMISSIONS - 1);
  });

  it('accepts one of many simultaneous uses of one recovery code', async () => {
    const user = await registerUser(s);
    const { codes } = await enableTotp(s, user.accessToken);
    const outcomes = await race(user.accessToken, codes[0]!);
    expect(outcomes.filter((o) => o === 'Reauthentication')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'InvalidSecondFactorError')).toHaveLength(SUBMISSIONS - 1);
  });
});
