/**
 * Codes spent at most once under concurrency, on PostgreSQL (PGlite is one connection and would
 * run the submissions one after another): of simultaneous submissions of one TOTP code or one
 * recovery code, exactly one succeeds. And a password sign-in in flight while the owner turns
 * TOTP on never ends in a one-factor session that outlives it (the interleaving is fixed by
 * holding the user's row from another connection).
 */
import { and, eq, isNotNull, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authEvents, recoveryCodes, users } from '../../src/db/schema.js';
import { sessionsOf } from '../support/rows.js';
import { meWorks, refreshWorks } from '../support/account.js';
import { onPostgres } from '../support/database.js';
import { registerUser } from '../support/operations.js';
import { serveTestApp, type ServedApp } from '../support/served.js';
import { GOOD_PASSWORD } from '../support/operations.js';
import {
  COMPLETE_SIGN_IN,
  CONFIRM_TOTP,
  enableTotp,
  ENROLL_TOTP,
  LOGIN_2FA,
  passwordStep,
  REAUTHENTICATE,
  totpCode,
} from './support.js';

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

  it('spends one recovery code of many simultaneous completions of one challenge with distinct right codes', async () => {
    const user = await registerUser(s);
    const { codes } = await enableTotp(s, user.accessToken);
    const challenge = await passwordStep(s, user.email, GOOD_PASSWORD);
    const answers = await Promise.all(codes.slice(0, 5).map((code) => s.gql(COMPLETE_SIGN_IN, { challenge, code })));
    const winners = answers.filter((res) => res.data?.completeSignIn.__typename === 'AuthPayload');
    expect(winners).toHaveLength(1);
    // The losers' codes were right but opened nothing: they stay unused.
    const used = await s.t.database.db.select().from(recoveryCodes).where(and(eq(recoveryCodes.userId, user.userId), isNotNull(recoveryCodes.usedAt)));
    expect(used).toHaveLength(1);
  });

  it('opens exactly one session from two simultaneous completions (two challenges) with the same recovery code', async () => {
    const user = await registerUser(s);
    const { codes } = await enableTotp(s, user.accessToken);
    const challenges = [await passwordStep(s, user.email, GOOD_PASSWORD), await passwordStep(s, user.email, GOOD_PASSWORD)];
    const answers = await Promise.all(challenges.map((challenge) => s.gql(COMPLETE_SIGN_IN, { challenge, code: codes[0] })));
    const types = answers.map((res) => res.data?.completeSignIn.__typename ?? JSON.stringify(res.errors));
    expect(types.sort()).toEqual(['AuthPayload', 'InvalidSecondFactorError']);
    const signIns = await s.t.database.db.select().from(authEvents).where(and(eq(authEvents.userId, user.userId), eq(authEvents.type, 'login_success')));
    expect(signIns).toHaveLength(1);
    expect(await sessionsOf(s.t, user.userId)).toHaveLength(2); // registration's and the one sign-in's
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

describe.runIf(onPostgres)('a password sign-in racing the owner turning TOTP on, on PostgreSQL', () => {
  let s: ServedApp;
  beforeAll(async () => {
    s = await serveTestApp();
  });
  afterAll(async () => {
    await s?.close();
  });

  /**
   * Holds the user's row from another connection, as a writer of the row would
   * (`FOR NO KEY UPDATE`: foreign-key checks of inserts naming the user still pass), until release().
   */
  async function holdUserRow(userId: string) {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const held = new Promise<void>((resolve) => (locked = resolve));
    const done = s.t.database.db.transaction(async (tx) => {
      await tx.select({ id: users.id }).from(users).where(eq(users.id, userId)).for('no key update');
      locked();
      await gate;
    });
    await held;
    return {
      release: async () => {
        release();
        await done;
      },
    };
  }

  /** Waits until `n` requests wait for a lock, or `settled` resolved first (then false: that one never waited). */
  async function waitForWaiters(n: number, settled: Promise<unknown>): Promise<boolean> {
    let finished = false;
    void settled.then(() => (finished = true));
    for (let i = 0; i < 600; i += 1) {
      const [row] = await s.t.database.db
        .select({ waiting: sql<number>`count(*)`.mapWith(Number) })
        .from(sql`pg_stat_activity`)
        .where(sql`datname = current_database() and wait_event_type = 'Lock'`);
      if (row!.waiting >= n) return true;
      if (finished) return false;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`never ${n} requests waiting for a lock`);
  }

  async function userWithPendingTotp() {
    const user = await registerUser(s);
    const enrolled = await s.gql(ENROLL_TOTP, {}, { token: user.accessToken });
    return { ...user, secret: enrolled.data!.enrollTotp.secret as string };
  }

  const confirm = (user: { accessToken: string; secret: string }) =>
    s.gql(CONFIRM_TOTP, { code: totpCode(user.secret, s.t.clock.now()) }, { token: user.accessToken });

  it('leaves no live one-factor session when TOTP is turned on while the sign-in waits to open its session', async () => {
    const user = await userWithPendingTotp();
    const hold = await holdUserRow(user.userId);
    const login = s.gql(LOGIN_2FA, { input: { email: user.email, password: GOOD_PASSWORD } });
    expect(await waitForWaiters(1, login)).toBe(true); // past its factor check (none yet), waiting to open a session
    const confirmed = confirm(user);
    await waitForWaiters(2, confirmed); // confirmTotp waits behind the sign-in (or, unlocked, commits at once)
    await hold.release();

    expect((await confirmed).data?.confirmTotp.__typename).toBe('RecoveryCodes');
    const answer = (await login).data!.login;
    if (answer.__typename === 'AuthPayload') {
      // Opened first, so the factor's turning on ended it.
      expect(await meWorks(s.t, answer.accessToken)).toBe(false);
      expect(await refreshWorks(s.t, answer.refreshToken)).toBe(false);
    } else {
      expect(answer.__typename).toBe('SecondFactorRequired');
    }
  });

  it('answers SecondFactorRequired when TOTP was turned on after the password was checked but before the session opened', async () => {
    const user = await userWithPendingTotp();
    const hold = await holdUserRow(user.userId);
    const confirmed = confirm(user);
    // confirmTotp takes the user's row lock, so it waits here (and commits first once released).
    expect(await waitForWaiters(1, confirmed)).toBe(true);
    const login = s.gql(LOGIN_2FA, { input: { email: user.email, password: GOOD_PASSWORD } });
    expect(await waitForWaiters(2, login)).toBe(true); // it saw no factor yet and waits to open a session
    await hold.release();

    expect((await confirmed).data?.confirmTotp.__typename).toBe('RecoveryCodes');
    const answer = (await login).data!.login;
    expect(answer.__typename, JSON.stringify(answer)).toBe('SecondFactorRequired');
    expect(answer.methods).toEqual(['TOTP', 'RECOVERY_CODE']);
  });
});
