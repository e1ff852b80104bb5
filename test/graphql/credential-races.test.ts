/**
 * A sign-in checks a password for tens of milliseconds (argon2) before it opens a session.
 * Whatever changes the account meanwhile (a password change or reset, disabling it, "log out
 * everywhere") must win: the sign-in may not write back the hash it read, nor open a session
 * the change was meant to end. The argon2 check of the racing sign-in is held at a gate, so
 * the interleaving is the same on every run and on both databases; the last block repeats the
 * race with real concurrency on PostgreSQL.
 */
import argon2 from 'argon2';
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ARGON2_PARAMS } from '../../src/credentials/passwords.js';
import { CHANGE_PASSWORD, NEW_PASSWORD, RESET_PASSWORD, loginAnswer, meWorks, refreshWorks, requestResetToken } from '../support/account.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { registerAdmin, SET_USER_ACTIVE } from '../support/authz.js';
import { onPostgres } from '../support/database.js';
import { GOOD_PASSWORD, LOGIN, LOGOUT, registerUser } from '../support/operations.js';
import { userRow } from '../support/rows.js';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.js';
import { users } from '../../src/db/schema.js';
import { eq } from 'drizzle-orm';

let t: TestApp;
let smtp: TestSmtpServer;
beforeAll(async () => {
  smtp = await startSmtpServer();
  t = await createTestApp({ SMTP_URL: smtp.url });
});
afterAll(async () => {
  await t?.close();
  await smtp?.close();
});
afterEach(() => {
  vi.restoreAllMocks();
});

const verify = argon2.verify.bind(argon2);

/**
 * Holds the next argon2 verification until `release()`: `checked` resolves once it has run
 * (so the caller knows the racing request has read the account and checked the password).
 */
function holdNextPasswordCheck() {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let reached!: () => void;
  const started = new Promise<void>((resolve) => (reached = resolve));
  vi.spyOn(argon2, 'verify').mockImplementationOnce(async (hash, password, options) => {
    const ok = await verify(hash, password, options);
    reached();
    await gate;
    return ok;
  });
  return { started, release };
}

/** Starts a login with these credentials whose password check is held; resolves once it is. */
async function heldLogin(email: string, password: string) {
  const hold = holdNextPasswordCheck();
  const answer = t.gql(LOGIN, { input: { email, password } });
  await hold.started;
  return {
    /** Lets the login go on and returns its answer. */
    finish: async () => {
      hold.release();
      return (await answer).data!.login;
    },
  };
}

/** Waits until some other backend of this database waits for a lock (the racing request). */
async function waitUntilBlockedOnLock() {
  for (let i = 0; i < 600; i += 1) {
    const [row] = await t.database.db
      .select({ waiting: sql<number>`count(*)`.mapWith(Number) })
      .from(sql`pg_stat_activity`)
      .where(sql`datname = current_database() and wait_event_type = 'Lock'`);
    if (row!.waiting > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the racing request never waited for the lock');
}

async function changePassword(accessToken: string, current: string, next: string) {
  return (await t.gql(CHANGE_PASSWORD, { current, next }, { token: accessToken })).data!.changePassword;
}

describe('a sign-in racing a change to the account', () => {
  it('cannot undo a password change: a login that checked the old password opens no session and writes no hash', async () => {
    const user = await registerUser(t);
    const login = await heldLogin(user.email, GOOD_PASSWORD);
    const changed = await changePassword(user.accessToken, GOOD_PASSWORD, NEW_PASSWORD);
    expect(changed.__typename).toBe('AuthPayload');
    const newHash = (await userRow(t, user.userId)).passwordHash;

    const raced = await login.finish();
    expect(raced.__typename).toBe('InvalidCredentialsError');
    expect((await userRow(t, user.userId)).passwordHash).toBe(newHash);
    expect(await loginAnswer(t, user.email, NEW_PASSWORD)).toBe('AuthPayload');
    expect(await loginAnswer(t, user.email, GOOD_PASSWORD)).toBe('InvalidCredentialsError');
    expect(await meWorks(t, changed.accessToken)).toBe(true);
  });

  it('cannot undo a password reset', async () => {
    const user = await registerUser(t);
    const token = await requestResetToken(t, smtp, user.email);
    const login = await heldLogin(user.email, GOOD_PASSWORD);
    const reset = (await t.gql(RESET_PASSWORD, { token, password: NEW_PASSWORD })).data!.resetPassword;
    expect(reset.__typename).toBe('AuthPayload');

    expect((await login.finish()).__typename).toBe('InvalidCredentialsError');
    expect(await loginAnswer(t, user.email, NEW_PASSWORD)).toBe('AuthPayload');
    expect(await loginAnswer(t, user.email, GOOD_PASSWORD)).toBe('InvalidCredentialsError');
  });

  it('a re-hash on sign-in replaces only the hash it verified, never a newer password', async () => {
    const user = await registerUser(t);
    // An account whose hash was made with weaker parameters: its next sign-in re-hashes it.
    const weak = await argon2.hash(GOOD_PASSWORD, { ...ARGON2_PARAMS, memoryCost: 8192 });
    await t.database.db.update(users).set({ passwordHash: weak }).where(eq(users.id, user.userId));
    const login = await heldLogin(user.email, GOOD_PASSWORD);
    const changed = await changePassword(user.accessToken, GOOD_PASSWORD, NEW_PASSWORD);
    expect(changed.__typename).toBe('AuthPayload');

    expect((await login.finish()).__typename).toBe('InvalidCredentialsError');
    expect(await argon2.verify((await userRow(t, user.userId)).passwordHash!, NEW_PASSWORD)).toBe(true);
  });

  it('cannot open a session in an account disabled meanwhile, not even one that comes alive when it is enabled again', async () => {
    const admin = await registerAdmin(t);
    const user = await registerUser(t);
    const login = await heldLogin(user.email, GOOD_PASSWORD);
    const off = await t.gql(SET_USER_ACTIVE, { userId: user.userId, active: false }, { token: admin.accessToken });
    expect(off.data?.setUserActive.active).toBe(false);

    const raced = await login.finish();
    expect(raced.__typename).toBe('AccountDisabledError');
    await t.gql(SET_USER_ACTIVE, { userId: user.userId, active: true }, { token: admin.accessToken });
    expect(raced.refreshToken).toBeUndefined();
  });

  it('a sign-in finishing at the instant of a "log out everywhere" gets tokens that work, never dead ones', async () => {
    const user = await registerUser(t);
    const login = await heldLogin(user.email, GOOD_PASSWORD);
    // The cut-off lands at the instant the sign-in stamps its session with.
    const out = await t.gql(LOGOUT, { everywhere: true }, { token: user.accessToken });
    expect(out.data?.logout).toBe(true);
    const raced = await login.finish();
    expect(raced.__typename).toBe('AuthPayload');
    expect(await meWorks(t, raced.accessToken)).toBe(true);
  });

  it('opens a working session when the sign-in resumes after a "log out everywhere"', async () => {
    const user = await registerUser(t);
    t.clock.advance(1);
    const login = await heldLogin(user.email, GOOD_PASSWORD);
    const out = await t.gql(LOGOUT, { everywhere: true }, { token: user.accessToken });
    expect(out.data?.logout).toBe(true);
    t.clock.advance(1);
    const raced = await login.finish();
    expect(raced.__typename).toBe('AuthPayload');
    expect(await meWorks(t, raced.accessToken)).toBe(true);
    expect(await refreshWorks(t, raced.refreshToken)).toBe(true);
  });

  it("a password change made with a stolen old password after the owner changed it is refused: the owner's change signed that session out, so it changes nothing", async () => {
    const owner = await registerUser(t);
    const attacker = await t.gql(LOGIN, { input: { email: owner.email, password: GOOD_PASSWORD } });
    const hold = holdNextPasswordCheck();
    const stolen = t.gql(CHANGE_PASSWORD, { current: GOOD_PASSWORD, next: 'attacker-Chose-88-this' }, {
      token: attacker.data!.login.accessToken,
    });
    await hold.started;
    expect((await changePassword(owner.accessToken, GOOD_PASSWORD, NEW_PASSWORD)).__typename).toBe('AuthPayload');
    hold.release();
    const refused = await stolen;
    expect(refused.data, JSON.stringify(refused)).toBeNull();
    expect(refused.errors?.[0]?.extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'REVOKED' });
    expect(await loginAnswer(t, owner.email, NEW_PASSWORD)).toBe('AuthPayload');
  });
});

describe.runIf(onPostgres)('sign-ins racing account changes on PostgreSQL', () => {
  it('refuses a sign-in whose session would begin before a cut-off committed while it waited for the account', async () => {
    const user = await registerUser(t);
    const db = t.database.db;
    // Another transaction holds the account row while the sign-in checks the password, then
    // moves the cut-off past the sign-in's instant (as a "log out everywhere" a moment later would).
    const { pending } = await db.transaction(async (tx) => {
      await tx.execute(sql`select 1 from users where id = ${user.userId} for update`);
      const pending = t.gql(LOGIN, { input: { email: user.email, password: GOOD_PASSWORD } });
      await waitUntilBlockedOnLock();
      const later = new Date(t.clock.now().getTime() + 1000).toISOString();
      await tx.execute(sql`update users set tokens_valid_after = ${later}::timestamptz where id = ${user.userId}`);
      return { pending }; // not awaited here: the sign-in can only go on once this commits
    });
    const answer = await pending;
    expect(answer.data?.login.__typename).toBe('InvalidCredentialsError');
  });


  it('after a change under a storm of old-password logins, only the new password works and no old-password session survives', async () => {
    const user = await registerUser(t);
    // Enough pooled connections that the logins really run side by side.
    await Promise.all(Array.from({ length: 8 }, () => t.database.db.execute(sql`select pg_sleep(0.05)`)));
    let changed = false;
    const lateSessions: string[] = [];
    const storm = Array.from({ length: 4 }, async () => {
      for (let i = 0; i < 6; i += 1) {
        const startedAfterChange = changed;
        const answer = (await t.gql(LOGIN, { input: { email: user.email, password: GOOD_PASSWORD } })).data!.login;
        if (answer.__typename === 'AuthPayload' && startedAfterChange) lateSessions.push(answer.accessToken);
      }
    });
    const change = (async () => {
      const payload = await changePassword(user.accessToken, GOOD_PASSWORD, NEW_PASSWORD);
      changed = true;
      return payload;
    })();
    const [payload] = await Promise.all([change, ...storm]);
    expect(payload.__typename).toBe('AuthPayload');
    expect(lateSessions).toEqual([]);
    expect(await loginAnswer(t, user.email, GOOD_PASSWORD)).toBe('InvalidCredentialsError');
    expect(await loginAnswer(t, user.email, NEW_PASSWORD)).toBe('AuthPayload');
    expect(await argon2.verify((await userRow(t, user.userId)).passwordHash!, NEW_PASSWORD)).toBe(true);
  }, 120_000);
});
