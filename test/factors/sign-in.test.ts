/**
 * Sign-in with a second factor over a real port, frozen clock: the right password answers
 * SecondFactorRequired and never tokens; completeSignIn finishes it with a code, once; the
 * challenge dies after 5 wrong codes (also with RATE_LIMITS=off), after 5 minutes, and when the
 * password changes; wrong codes count toward the account lockout shared with passwords.
 */
import argon2 from 'argon2';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../src/db/schema.js';
import { inspect } from '../support/forge.js';
import { GOOD_PASSWORD, LOGOUT, registerUser } from '../support/operations.js';
import { serveTestApp, type ServedApp } from '../support/served.js';
import { NEW_PASSWORD } from '../support/account.js';
import { registerAdmin, SET_USER_ACTIVE } from '../support/authz.js';
import { sessionsOf } from '../support/rows.js';
import { CHALLENGED, CHANGE_PASSWORD_BRIEF, COMPLETE_SIGN_IN, enableTotp, eventsOf, LOGIN_2FA, passwordStep, totpCode } from './support.js';

let s: ServedApp; // RATE_LIMITS=off (the test default)
let locking: ServedApp; // RATE_LIMITS=on, same database
beforeAll(async () => {
  s = await serveTestApp();
  // Per-IP limits out of the way: every request of these tests comes from 127.0.0.1.
  locking = await serveTestApp({ RATE_LIMITS: 'on', RATE_LIMIT_LOGIN_IP: '1000/60', RATE_LIMIT_SECOND_FACTOR_IP: '1000/60' }, s.t.database);
});
afterAll(async () => {
  await locking?.close();
  await s?.close();
});

/** A user with TOTP on, the clock moved past the confirmation code's steps. */
async function userWithTotp(app: ServedApp = s) {
  const user = await registerUser(app);
  const { secret, codes } = await enableTotp(app, user.accessToken);
  app.t.clock.advance(90);
  return { ...user, secret, codes, now: () => app.t.clock.now() };
}
const complete = (app: ServedApp, challenge: string, code: string) => app.gql(COMPLETE_SIGN_IN, { challenge, code });
const typeOf = (res: { data?: any }) => res.data?.completeSignIn?.__typename ?? JSON.stringify(res);

describe('login of a user with a second factor', () => {
  it('re-hashes an outdated password hash at the password step (the second step never sees the password), and the challenge still completes', async () => {
    const user = await userWithTotp();
    const outdated = await argon2.hash(GOOD_PASSWORD, { type: argon2.argon2id, memoryCost: 4096, timeCost: 1, parallelism: 1 });
    await s.t.database.db.update(users).set({ passwordHash: outdated }).where(eq(users.id, user.userId));
    const challenge = await passwordStep(s, user.email, GOOD_PASSWORD);
    const [row] = await s.t.database.db.select({ passwordHash: users.passwordHash }).from(users).where(eq(users.id, user.userId));
    expect(row!.passwordHash).not.toBe(outdated);
    expect(argon2.needsRehash(row!.passwordHash!, { memoryCost: 4096, timeCost: 1, parallelism: 1 })).toBe(true); // not the old parameters
    expect(await argon2.verify(row!.passwordHash!, GOOD_PASSWORD)).toBe(true);
    expect(typeOf(await complete(s, challenge, totpCode(user.secret, user.now())))).toBe('AuthPayload');
  });

  it('answers SecondFactorRequired with a challenge, the methods and 300 s, and no tokens', async () => {
    const user = await userWithTotp();
    const res = await s.gql(LOGIN_2FA, { input: { email: user.email, password: GOOD_PASSWORD } });
    expect(res.data?.login).toEqual(CHALLENGED);
    expect(JSON.stringify(res)).not.toMatch(/accessToken|refreshToken/);
  });

  it('answers InvalidCredentialsError for a wrong password, as without a factor', async () => {
    const user = await userWithTotp();
    const res = await s.gql(LOGIN_2FA, { input: { email: user.email, password: 'wrong-Password-1' } });
    expect(res.data?.login.__typename).toBe('InvalidCredentialsError');
  });
});

describe('completeSignIn', () => {
  it('refuses a wrong code, then opens a session with amr ["pwd","otp"] for the right one', async () => {
    const user = await userWithTotp();
    const challenge = await passwordStep(s, user.email, GOOD_PASSWORD);
    expect(typeOf(await complete(s, challenge, totpCode(user.secret, new Date(user.now().getTime() - 120_000))))).toBe(
      'InvalidSecondFactorError',
    );
    const res = await complete(s, challenge, totpCode(user.secret, user.now()));
    expect(typeOf(res)).toBe('AuthPayload');
    expect(res.data!.completeSignIn.user.id).toBe(user.userId);
    expect(inspect(res.data!.completeSignIn.accessToken).claims.amr).toEqual(['pwd', 'otp']);
  });

  it('spends the challenge: it finishes one sign-in only', async () => {
    const user = await userWithTotp();
    const challenge = await passwordStep(s, user.email, GOOD_PASSWORD);
    expect(typeOf(await complete(s, challenge, totpCode(user.secret, user.now())))).toBe('AuthPayload');
    s.t.clock.advance(30);
    expect(typeOf(await complete(s, challenge, totpCode(user.secret, user.now())))).toBe('InvalidSecondFactorError');
  });

  it('refuses a replayed code on a new challenge', async () => {
    const user = await userWithTotp();
    const code = totpCode(user.secret, user.now());
    expect(typeOf(await complete(s, await passwordStep(s, user.email, GOOD_PASSWORD), code))).toBe('AuthPayload');
    expect(typeOf(await complete(s, await passwordStep(s, user.email, GOOD_PASSWORD), code))).toBe('InvalidSecondFactorError');
  });

  it('takes codes of the previous and next step, and refuses those two steps off', async () => {
    const user = await userWithTotp();
    const shifted = (seconds: number) => totpCode(user.secret, new Date(user.now().getTime() + seconds * 1000));
    const challenge = await passwordStep(s, user.email, GOOD_PASSWORD);
    expect(typeOf(await complete(s, challenge, shifted(-60)))).toBe('InvalidSecondFactorError');
    expect(typeOf(await complete(s, challenge, shifted(60)))).toBe('InvalidSecondFactorError');
    expect(typeOf(await complete(s, challenge, shifted(-30)))).toBe('AuthPayload');
    expect(typeOf(await complete(s, await passwordStep(s, user.email, GOOD_PASSWORD), shifted(30)))).toBe('AuthPayload');
  });

  it('takes a recovery code once, and never twice', async () => {
    const user = await userWithTotp();
    expect(typeOf(await complete(s, await passwordStep(s, user.email, GOOD_PASSWORD), user.codes[0]!))).toBe('AuthPayload');
    expect(typeOf(await complete(s, await passwordStep(s, user.email, GOOD_PASSWORD), user.codes[0]!))).toBe('InvalidSecondFactorError');
  });

  it('kills the challenge after 5 wrong codes, with RATE_LIMITS=off: the right code is refused then', async () => {
    const user = await userWithTotp();
    const challenge = await passwordStep(s, user.email, GOOD_PASSWORD);
    for (let i = 0; i < 5; i++) expect(typeOf(await complete(s, challenge, `00000${i}`))).toBe('InvalidSecondFactorError');
    expect(typeOf(await complete(s, challenge, totpCode(user.secret, user.now())))).toBe('InvalidSecondFactorError');
    // A new password step gives a new challenge, which the same code then passes.
    expect(typeOf(await complete(s, await passwordStep(s, user.email, GOOD_PASSWORD), totpCode(user.secret, user.now())))).toBe('AuthPayload');
  });

  it('lets 4 wrong codes pass: the fifth guess is still checked', async () => {
    const user = await userWithTotp();
    const challenge = await passwordStep(s, user.email, GOOD_PASSWORD);
    for (let i = 0; i < 4; i++) await complete(s, challenge, `00000${i}`);
    expect(typeOf(await complete(s, challenge, totpCode(user.secret, user.now())))).toBe('AuthPayload');
  });

  it('refuses a challenge after 5 minutes', async () => {
    const user = await userWithTotp();
    const challenge = await passwordStep(s, user.email, GOOD_PASSWORD);
    s.t.clock.advance(301);
    expect(typeOf(await complete(s, challenge, totpCode(user.secret, user.now())))).toBe('InvalidSecondFactorError');
  });

  it('refuses a challenge issued before the password changed (bound to the password step)', async () => {
    const user = await userWithTotp();
    const challenge = await passwordStep(s, user.email, GOOD_PASSWORD);
    // The owner, signed in with both factors, changes the password meanwhile.
    const owner = await complete(s, await passwordStep(s, user.email, GOOD_PASSWORD), user.codes[1]!);
    const changed = await s.gql(CHANGE_PASSWORD_BRIEF, { current: GOOD_PASSWORD, next: NEW_PASSWORD }, { token: owner.data!.completeSignIn.accessToken });
    expect(changed.data?.changePassword.__typename, JSON.stringify(changed)).toBe('AuthPayload');
    expect(typeOf(await complete(s, challenge, totpCode(user.secret, user.now())))).toBe('InvalidSecondFactorError');
  });

  it('answers AccountDisabledError and keeps the recovery code when the account was disabled between the two steps: nothing opened, the code still works once re-enabled', async () => {
    const user = await userWithTotp();
    const admin = await registerAdmin(s.t);
    const setActive = async (active: boolean) => {
      const res = await s.gql(SET_USER_ACTIVE, { userId: user.userId, active }, { token: admin.accessToken });
      expect(res.data?.setUserActive, JSON.stringify(res)).toEqual({ id: user.userId, active });
    };
    const challenge = await passwordStep(s, user.email, GOOD_PASSWORD);
    await setActive(false);
    const sessionsBefore = (await sessionsOf(s.t, user.userId)).length;

    const refused = await complete(s, challenge, user.codes[0]!);
    expect(refused.data?.completeSignIn).toMatchObject({ __typename: 'AccountDisabledError', code: 'ACCOUNT_DISABLED' });
    expect(JSON.stringify(refused)).not.toMatch(/accessToken|refreshToken/);
    expect(await sessionsOf(s.t, user.userId)).toHaveLength(sessionsBefore);
    expect(await eventsOf(s, user.userId, ['login_success'])).toEqual([]);

    await setActive(true);
    const res = await complete(s, await passwordStep(s, user.email, GOOD_PASSWORD), user.codes[0]!);
    expect(typeOf(res)).toBe('AuthPayload');
  });

  it('refuses a challenge issued before the user signed out everywhere, and takes one issued after', async () => {
    const user = await userWithTotp();
    const before = await passwordStep(s, user.email, GOOD_PASSWORD);
    s.t.clock.advance(1);
    const out = await s.gql(LOGOUT, { token: user.refreshToken, everywhere: true }, { token: user.accessToken });
    expect(out.data?.logout, JSON.stringify(out)).toBe(true);
    s.t.clock.advance(1);
    expect(typeOf(await complete(s, before, totpCode(user.secret, user.now())))).toBe('InvalidSecondFactorError');
    expect(await sessionsOf(s.t, user.userId)).toHaveLength(1); // only the one signed out
    const after = await passwordStep(s, user.email, GOOD_PASSWORD);
    s.t.clock.advance(30);
    expect(typeOf(await complete(s, after, totpCode(user.secret, user.now())))).toBe('AuthPayload');
  });

  it('refuses a garbled or unknown challenge', async () => {
    expect(typeOf(await complete(s, 'not-a-challenge', '123456'))).toBe('InvalidSecondFactorError');
    expect(typeOf(await complete(s, `${'A'.repeat(22)}.${'B'.repeat(43)}`, '123456'))).toBe('InvalidSecondFactorError');
  });

  it.each([
    ['neither a code nor a passkey', {}, 'code'],
    ['both', { code: '123456', passkey: {} }, 'passkey'],
  ])('answers InputError for %s', async (_what, extra, field) => {
    const user = await userWithTotp();
    const challenge = await passwordStep(s, user.email, GOOD_PASSWORD);
    const res = await s.gql(COMPLETE_SIGN_IN, { challenge, ...extra });
    expect(res.data?.completeSignIn).toMatchObject({ __typename: 'InputError', code: 'INVALID_INPUT', field });
  });
});

describe('the account lockout, shared by passwords and codes', () => {
  it('counts wrong codes like wrong passwords: 2 wrong passwords and 3 wrong codes lock the email', async () => {
    const user = await userWithTotp(locking);
    for (let i = 0; i < 2; i++) {
      const res = await locking.gql(LOGIN_2FA, { input: { email: user.email, password: `wrong-Password-${i}` } });
      expect(res.data?.login.__typename).toBe('InvalidCredentialsError');
    }
    const challenge = await passwordStep(locking, user.email, GOOD_PASSWORD);
    for (let i = 0; i < 3; i++) expect(typeOf(await complete(locking, challenge, `99999${i}`))).toBe('InvalidSecondFactorError');
    const locked = await locking.gql(LOGIN_2FA, { input: { email: user.email, password: GOOD_PASSWORD } });
    expect(locked.data?.login.__typename, JSON.stringify(locked)).toBe('RateLimitedError');
  });

  it('is not reset by a right password alone, only by a completed sign-in', async () => {
    const user = await userWithTotp(locking);
    const wrongPassword = (i: number) => locking.gql(LOGIN_2FA, { input: { email: user.email, password: `wrong-Password-${i}` } });
    for (let i = 0; i < 4; i++) await wrongPassword(i);
    const challenge = await passwordStep(locking, user.email, GOOD_PASSWORD); // right password: count stays at 4
    expect((await wrongPassword(9)).data?.login.__typename).toBe('InvalidCredentialsError'); // the fifth failure locks
    const locked = await locking.gql(LOGIN_2FA, { input: { email: user.email, password: GOOD_PASSWORD } });
    expect(locked.data?.login.__typename).toBe('RateLimitedError');
    expect(typeOf(await complete(locking, challenge, totpCode(user.secret, user.now())))).toBe('RateLimitedError');
  });

  it('is reset by a completed sign-in', async () => {
    const user = await userWithTotp(locking);
    const wrongPassword = (i: number) => locking.gql(LOGIN_2FA, { input: { email: user.email, password: `wrong-Password-${i}` } });
    for (let i = 0; i < 4; i++) await wrongPassword(i);
    const challenge = await passwordStep(locking, user.email, GOOD_PASSWORD);
    expect(typeOf(await complete(locking, challenge, totpCode(user.secret, user.now())))).toBe('AuthPayload');
    for (let i = 0; i < 4; i++) expect((await wrongPassword(i)).data?.login.__typename).toBe('InvalidCredentialsError');
    expect(await passwordStep(locking, user.email, GOOD_PASSWORD)).toEqual(expect.any(String));
  });
});
