/**
 * Codes spent at most once under concurrency, on PostgreSQL (PGlite is one connection and would
 * run the submissions one after another): of simultaneous submissions of one TOTP code or one
 * recovery code, exactly one succeeds.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authEvents } from '../../src/db/schema.js';
import { onPostgres } from '../support/database.js';
import { registerUser } from '../support/operations.js';
import { serveTestApp, type ServedApp } from '../support/served.js';
import { GOOD_PASSWORD } from '../support/operations.js';
import { COMPLETE_SIGN_IN, enableTotp, passwordStep, REAUTHENTICATE, totpCode } from './support.js';

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

  it('finishes one sign-in from many simultaneous completions of one challenge with distinct right codes', async () => {
    const user = await registerUser(s);
    const { codes } = await enableTotp(s, user.accessToken);
    const challenge = await passwordStep(s, user.email, GOOD_PASSWORD);
    const answers = await Promise.all(codes.slice(0, 5).map((code) => s.gql(COMPLETE_SIGN_IN, { challenge, code })));
    const types = answers.map((res) => res.data?.completeSignIn.__typename ?? JSON.stringify(res.errors));
    expect(types.filter((t) => t === 'AuthPayload')).toHaveLength(1);
    expect(types.filter((t) => t === 'InvalidSecondFactorError')).toHaveLength(4);
  });

  it('checks at most 5 of many simultaneous wrong codes on one challenge, which is dead afterwards', async () => {
    const user = await registerUser(s);
    const { secret } = await enableTotp(s, user.accessToken);
    s.t.clock.advance(90);
    const challenge = await passwordStep(s, user.email, GOOD_PASSWORD);
    const wrong = Array.from({ length: SUBMISSIONS }, (_, i) => String(100000 + i));
    await Promise.all(wrong.map((code) => s.gql(COMPLETE_SIGN_IN, { challenge, code })));
    const failures = await s.t.database.db.select().from(authEvents).where(eq(authEvents.userId, user.userId));
    expect(failures.filter((e) => e.type === 'second_factor_failure')).toHaveLength(5);
    const right = await s.gql(COMPLETE_SIGN_IN, { challenge, code: totpCode(secret, s.t.clock.now()) });
    expect(right.data?.completeSignIn.__typename).toBe('InvalidSecondFactorError');
  });
});
