/**
 * Codes spent at most once under concurrency, on PostgreSQL (PGlite is one connection and would
 * run the submissions one after another): of simultaneous submissions of one TOTP code or one
 * recovery code, exactly one succeeds. And a password sign-in in flight while the owner turns
 * TOTP on never ends in a one-factor session that outlives it (the interleaving is fixed by
 * holding the user's row from another connection). And passkey changes racing other factor
 * changes run one after the other under the user's lock, so the audit's "last factor removed"
 * matches what is left, and a change whose session the other one signed out changes nothing (the
 * interleaving fixed by holding back audit writes).
 */
import { and, eq, isNotNull } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authEvents, passkeys, recoveryCodes, users } from '../../src/db/schema.js';
import { holdInTransaction, interleaveAtAudit, waitForLockWaiters } from '../support/lock-waits.js';
import { sessionsOf } from '../support/rows.js';
import { meWorks, refreshWorks } from '../support/account.js';
import { onPostgres } from '../support/database.js';
import { loginUser } from '../support/operations.js';
import { serveTestApp, type ServedApp } from '../support/served.js';
import { GOOD_PASSWORD } from '../support/operations.js';
import { SoftAuthenticator } from '../support/webauthn-authenticator.js';
import { addPasskey, FINISH_REGISTRATION, ORIGIN, PASSKEY_ENV, passkeySignIn, REMOVE_PASSKEY, START_REGISTRATION, twoFactorSession } from './passkey-support.js';
import {
  CHANGE_PASSWORD_BRIEF,
  COMPLETE_SIGN_IN,
  CONFIRM_TOTP,
  DISABLE_TOTP,
  enableTotp,
  ENROLL_TOTP,
  eventsOf,
  LOGIN_2FA,
  MY_FACTORS,
  passwordStep,
  REAUTHENTICATE,
  registerVerifiedUser,
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
    const user = await registerVerifiedUser(s);
    const { secret } = await enableTotp(s, user.accessToken);
    s.t.clock.advance(90); // past the confirmation code's window
    const outcomes = await race(user.accessToken, totpCode(secret, s.t.clock.now()));
    expect(outcomes.filter((o) => o === 'Reauthentication')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'InvalidSecondFactorError')).toHaveLength(SUBMISSIONS - 1);
  });

  it('accepts one of many simultaneous uses of one recovery code', async () => {
    const user = await registerVerifiedUser(s);
    const { codes } = await enableTotp(s, user.accessToken);
    const outcomes = await race(user.accessToken, codes[0]!);
    expect(outcomes.filter((o) => o === 'Reauthentication')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'InvalidSecondFactorError')).toHaveLength(SUBMISSIONS - 1);
  });

  it('finishes one sign-in from many simultaneous completions of one challenge with distinct right codes', async () => {
    const user = await registerVerifiedUser(s);
    const { codes } = await enableTotp(s, user.accessToken);
    const challenge = await passwordStep(s, user.email, GOOD_PASSWORD);
    const answers = await Promise.all(codes.slice(0, 5).map((code) => s.gql(COMPLETE_SIGN_IN, { challenge, code })));
    const types = answers.map((res) => res.data?.completeSignIn.__typename ?? JSON.stringify(res.errors));
    expect(types.filter((t) => t === 'AuthPayload')).toHaveLength(1);
    expect(types.filter((t) => t === 'InvalidSecondFactorError')).toHaveLength(4);
  });

  it('spends one recovery code of many simultaneous completions of one challenge with distinct right codes', async () => {
    const user = await registerVerifiedUser(s);
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
    const user = await registerVerifiedUser(s);
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
    const user = await registerVerifiedUser(s);
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

  it('checks at most 5 of many simultaneous wrong codes given to reauthenticate by one session, which then refuses the right one', async () => {
    const user = await registerVerifiedUser(s);
    const { secret } = await enableTotp(s, user.accessToken);
    s.t.clock.advance(90);
    const wrong = Array.from({ length: SUBMISSIONS }, (_, i) => String(100000 + i));
    await Promise.all(wrong.map((code) => s.gql(REAUTHENTICATE, { code }, { token: user.accessToken })));
    const failures = await s.t.database.db.select().from(authEvents).where(eq(authEvents.userId, user.userId));
    expect(failures.filter((e) => e.type === 'second_factor_failure')).toHaveLength(5);
    const right = await s.gql(REAUTHENTICATE, { code: totpCode(secret, s.t.clock.now()) }, { token: user.accessToken });
    expect(right.data?.reauthenticate.__typename).toBe('InvalidSecondFactorError');
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
  const holdUserRow = (userId: string) =>
    holdInTransaction(s, (tx) => tx.select({ id: users.id }).from(users).where(eq(users.id, userId)).for('no key update'));

  const waitForWaiters = (n: number, settled: Promise<unknown>) => waitForLockWaiters(s, n, settled);

  async function userWithPendingTotp() {
    const user = await registerVerifiedUser(s);
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

describe.runIf(onPostgres)('passkey changes racing other factor changes, on PostgreSQL', () => {
  let p: ServedApp;
  beforeAll(async () => {
    p = await serveTestApp(PASSKEY_ENV);
  });
  afterAll(async () => {
    await p?.close();
  });

  const interleave = <A, B>(first: () => Promise<A>, second: () => Promise<B>) => interleaveAtAudit(p, first, second);

  /** The details of the user's second_factor_removed events (in no particular order: one frozen instant, random ids). */
  const removals = async (userId: string) => (await eventsOf(p, userId, ['second_factor_removed'])).map((e) => e.detail as Record<string, unknown>);
  const storedPasskeys = (userId: string) => p.t.database.db.select().from(passkeys).where(eq(passkeys.userId, userId));

  it('removePasskey and disableTotp of one session: no factor left, and exactly one removal says it was the last', async () => {
    const user = await registerVerifiedUser(p);
    const authenticator = new SoftAuthenticator(ORIGIN);
    const passkey = await addPasskey(p, user.accessToken, authenticator);
    // Factors are taken away (and, once there is one, added) from a session that passed two.
    const token = await twoFactorSession(p, authenticator);
    await enableTotp(p, token);
    const [removed, disabled] = await interleave(
      () => p.gql(REMOVE_PASSKEY, { id: passkey.id }, { token }),
      () => p.gql(DISABLE_TOTP, {}, { token }),
    );
    expect(removed.data?.removePasskey, JSON.stringify(removed)).toBe(true);
    expect(disabled.data?.disableTotp, JSON.stringify(disabled)).toBe(true);
    expect((await p.gql(MY_FACTORS, {}, { token })).data?.me.secondFactors).toEqual([]);
    // removePasskey committed first (TOTP was still on), disableTotp after it (nothing left).
    const events = await removals(user.userId);
    expect(events).toHaveLength(2);
    expect(events).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ method: 'PASSKEY', lastFactor: false }),
        expect.objectContaining({ method: 'TOTP', lastFactor: true }),
      ]),
    );
    expect(await meWorks(p.t, token)).toBe(true); // the acting session is not an "other" one
  });

  it('finishPasskeyRegistration and removePasskey of one session: the passkey added first stays, so removing the other one is not the last factor', async () => {
    const user = await registerVerifiedUser(p);
    const authenticator = new SoftAuthenticator(ORIGIN);
    const old = await addPasskey(p, user.accessToken, authenticator);
    const token = await twoFactorSession(p, authenticator);
    const started = await p.gql(START_REGISTRATION, {}, { token });
    const response = new SoftAuthenticator(ORIGIN).create(started.data!.startPasskeyRegistration);
    const [finished, removed] = await interleave(
      () => p.gql(FINISH_REGISTRATION, { response }, { token }),
      () => p.gql(REMOVE_PASSKEY, { id: old.id }, { token }),
    );
    expect(finished.data?.finishPasskeyRegistration.__typename, JSON.stringify(finished)).toBe('Passkey');
    expect(removed.data?.removePasskey, JSON.stringify(removed)).toBe(true);
    expect((await storedPasskeys(user.userId)).map((row) => row.id)).toEqual([finished.data!.finishPasskeyRegistration.id]);
    expect(await removals(user.userId)).toEqual([expect.objectContaining({ passkeyId: old.id, lastFactor: false })]);
    expect(await meWorks(p.t, token)).toBe(true);
  });

  it("a session signed out while its finishPasskeyRegistration waited (the owner turned TOTP on from another session) adds no passkey and is answered UNAUTHENTICATED", async () => {
    const user = await registerVerifiedUser(p);
    const owner = user.accessToken;
    const thief = (await loginUser(p.t, user.email)).accessToken;
    // Both sessions are password-only and the user has no factor yet: each may add one.
    const { secret } = (await p.gql(ENROLL_TOTP, {}, { token: owner })).data!.enrollTotp;
    const started = await p.gql(START_REGISTRATION, {}, { token: thief });
    const response = new SoftAuthenticator(ORIGIN).create(started.data!.startPasskeyRegistration);
    const [confirmed, finished] = await interleave(
      () => p.gql(CONFIRM_TOTP, { code: totpCode(secret, p.t.clock.now()) }, { token: owner }),
      () => p.gql(FINISH_REGISTRATION, { response }, { token: thief }),
    );
    expect(confirmed.data?.confirmTotp.__typename, JSON.stringify(confirmed)).toBe('RecoveryCodes');
    expect(finished.data, JSON.stringify(finished)).toBeNull();
    expect(finished.errors?.[0]?.extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'REVOKED' });
    expect(await storedPasskeys(user.userId)).toEqual([]);
    expect((await eventsOf(p, user.userId, ['second_factor_added'])).map((e) => (e.detail as { method: string }).method)).toEqual(['TOTP']);
    expect(await meWorks(p.t, owner)).toBe(true);
    expect(await meWorks(p.t, thief)).toBe(false);
  });

  it("removePasskey from two sessions, one passkey each: the first removal signs the other session out, so the second, which waited for the lock, removes nothing and is answered UNAUTHENTICATED", async () => {
    const user = await registerVerifiedUser(p);
    const [one, two] = [new SoftAuthenticator(ORIGIN), new SoftAuthenticator(ORIGIN)];
    const first = await addPasskey(p, user.accessToken, one);
    const mine = await twoFactorSession(p, one);
    const second = await addPasskey(p, mine, two);
    const other = await passkeySignIn(p, two, { email: user.email });
    expect(other.__typename, JSON.stringify(other)).toBe('AuthPayload');
    const [a, b] = await interleave(
      () => p.gql(REMOVE_PASSKEY, { id: first.id }, { token: mine }),
      () => p.gql(REMOVE_PASSKEY, { id: second.id }, { token: other.accessToken }),
    );
    expect(a.data?.removePasskey, JSON.stringify(a)).toBe(true);
    expect(b.errors?.[0]?.extensions, JSON.stringify(b)).toEqual({ code: 'UNAUTHENTICATED', reason: 'REVOKED' });
    expect((await storedPasskeys(user.userId)).map((row) => row.id)).toEqual([second.id]);
    expect(await removals(user.userId)).toEqual([expect.objectContaining({ passkeyId: first.id, lastFactor: false, revokedSessions: 1 })]);
    expect(await meWorks(p.t, mine)).toBe(true);
    expect(await meWorks(p.t, other.accessToken)).toBe(false);
  });

  it("a session signed out while its changePassword waited (the owner turned TOTP on from another session) changes nothing and gets no new session", async () => {
    const user = await registerVerifiedUser(p);
    const owner = user.accessToken;
    const thief = (await loginUser(p.t, user.email)).accessToken; // knows the password, recently signed in
    const { secret } = (await p.gql(ENROLL_TOTP, {}, { token: owner })).data!.enrollTotp;
    const [confirmed, changed] = await interleave(
      () => p.gql(CONFIRM_TOTP, { code: totpCode(secret, p.t.clock.now()) }, { token: owner }),
      () => p.gql(CHANGE_PASSWORD_BRIEF, { current: GOOD_PASSWORD, next: 'thief-Chose-88-this' }, { token: thief }),
    );
    expect(confirmed.data?.confirmTotp.__typename, JSON.stringify(confirmed)).toBe('RecoveryCodes');
    expect({
      answer: changed.errors?.[0]?.extensions ?? changed.data?.changePassword.__typename,
      ownerSignedIn: await meWorks(p.t, owner),
      ownerPasswordWorks: (await p.gql(LOGIN_2FA, { input: { email: user.email, password: GOOD_PASSWORD } })).data?.login.__typename,
    }).toEqual({
      answer: { code: 'UNAUTHENTICATED', reason: 'REVOKED' },
      ownerSignedIn: true,
      ownerPasswordWorks: 'SecondFactorRequired',
    });
  });
});
