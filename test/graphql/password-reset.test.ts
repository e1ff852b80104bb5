import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { authEvents, oneTimeTokens } from '../../src/db/schema.js';
import { purgeExpired } from '../../src/purge.js';
import {
  CHANGE_PASSWORD,
  MY_SESSIONS,
  NEW_PASSWORD,
  REQUEST_PASSWORD_RESET,
  RESET_PASSWORD,
  VERIFY_EMAIL,
  loginAnswer,
  meWorks,
  refreshWorks,
  requestResetToken,
  requestVerificationToken,
  sessionIdOf,
  tamper,
} from '../support/account.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { registerAdmin, SET_USER_ACTIVE } from '../support/authz.js';
import { onPostgres } from '../support/database.js';
import { GOOD_PASSWORD, loginUser, registerUser, uniqueEmail } from '../support/operations.js';
import { userRow } from '../support/rows.js';
import { decodeMail, headerOf, linkIn, startSmtpServer, type TestSmtpServer } from '../support/smtp.js';

const RESET_TTL = 3600;

let smtp: TestSmtpServer;
let t: TestApp;
beforeAll(async () => {
  smtp = await startSmtpServer();
  t = await createTestApp({ SMTP_URL: smtp.url, PASSWORD_RESET_TTL: String(RESET_TTL) });
});
afterAll(async () => {
  await t.services.tasks.idle();
  await t.close();
  await smtp.close();
});

async function reset(token: string, password = NEW_PASSWORD, app = t) {
  const res = await app.gql(RESET_PASSWORD, { token, password });
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!.resetPassword;
}


describe('password reset', () => {
  it('mails a reset link whose token sets a new password and signs in', async () => {
    const session = await registerUser(t);
    const res = await t.gql(REQUEST_PASSWORD_RESET, { email: session.email });
    expect(res).toMatchObject({ status: 200, data: { requestPasswordReset: true } });
    const mail = await smtp.nextMailTo(session.email);
    expect(headerOf(mail, 'subject')).toBe('Reset your password');
    const { link, token } = linkIn(mail, 'reset-password');
    expect(link).toBe(`http://127.0.0.1:4000/reset-password?token=${token}`); // HOST and PORT by default
    expect(decodeMail(mail.raw)).toContain('expires in 1 hour');

    const payload = await reset(token);
    expect(payload).toMatchObject({ __typename: 'AuthPayload', user: { id: session.userId, email: session.email } });
    expect(await meWorks(t, payload.accessToken)).toBe(true);
    expect(await loginAnswer(t, session.email, NEW_PASSWORD)).toBe('AuthPayload');
    expect(await loginAnswer(t, session.email, GOOD_PASSWORD)).toBe('InvalidCredentialsError');
  });

  it('revokes every session and token of the user, and marks the email verified', async () => {
    const first = await registerUser(t);
    const second = await loginUser(t, first.email);
    expect(await userRow(t, first.userId)).toMatchObject({ emailVerified: false, tokensValidAfter: null });

    const payload = await reset(await requestResetToken(t, smtp, first.email));
    expect(payload.user.emailVerified).toBe(true);
    for (const old of [first, second]) {
      expect(await meWorks(t, old.accessToken)).toBe(false);
      expect(await refreshWorks(t, old.refreshToken)).toBe(false);
    }
    const listed = await t.gql(MY_SESSIONS, {}, { token: payload.accessToken });
    expect(listed.data?.me.sessions.map((s: { id: string }) => s.id)).toEqual([sessionIdOf(payload.accessToken)]);
    expect(await refreshWorks(t, payload.refreshToken)).toBe(true);
    expect(await userRow(t, first.userId)).toMatchObject({ emailVerified: true, tokensValidAfter: expect.any(Date) });
  });

  it('answers true for an unknown address and sends nothing', async () => {
    const email = uniqueEmail('nobody');
    const res = await t.gql(REQUEST_PASSWORD_RESET, { email });
    expect(res).toEqual({ status: 200, data: { requestPasswordReset: true } });
    await t.services.tasks.idle();
    expect(smtp.mailsTo(email)).toEqual([]);
  });

  it('answers true for anything that is not an address at all', async () => {
    for (const email of ['', 'not an email', 'x'.repeat(1000)]) {
      expect((await t.gql(REQUEST_PASSWORD_RESET, { email })).data, email).toEqual({ requestPasswordReset: true });
    }
    await t.services.tasks.idle();
  });

  it('answers while the lookup of the address is still blocked, so the answer does not wait for it', async () => {
    const session = await registerUser(t);
    // A transaction holding an exclusive lock on users blocks every read of the table (on
    // PGlite, every query at all) until `release` is called.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holder = t.database.db.transaction(async (tx) => {
      await tx.execute(sql`lock table users in access exclusive mode`);
      locked();
      await gate;
    });
    await isLocked;
    const lookups = vi.spyOn(t.database.db, 'select');
    try {
      const answer = await Promise.race([
        t.gql(REQUEST_PASSWORD_RESET, { email: session.email }),
        // An answer that waited for the lock would never come before release(): any bound
        // proves it; a wide one allows for a loaded machine.
        new Promise<'no answer'>((resolve) => setTimeout(() => resolve('no answer'), 15_000)),
      ]);
      expect(answer).toEqual({ status: 200, data: { requestPasswordReset: true } });
      // The lookup has started in the background and is waiting on the lock: nothing sent yet.
      await vi.waitFor(() => expect(lookups).toHaveBeenCalled(), { timeout: 15_000 });
      expect(smtp.mailsTo(session.email)).toEqual([]);
    } finally {
      lookups.mockRestore();
      release();
      await holder;
    }
    await t.services.tasks.idle();
    linkIn(await smtp.nextMailTo(session.email), 'reset-password');
  });

  it('finds the account by the address normalized as at registration', async () => {
    const session = await registerUser(t);
    const res = await t.gql(REQUEST_PASSWORD_RESET, { email: `  ${session.email.toUpperCase()} ` });
    expect(res.data).toEqual({ requestPasswordReset: true });
    const { token } = linkIn(await smtp.nextMailTo(session.email), 'reset-password');
    expect((await reset(token)).__typename).toBe('AuthPayload');
  });

  it('accepts a token once: the second use answers InvalidTokenError', async () => {
    const session = await registerUser(t);
    const token = await requestResetToken(t, smtp, session.email);
    expect((await reset(token)).__typename).toBe('AuthPayload');
    expect(await reset(token, 'another-Strong-pass-77')).toMatchObject({ __typename: 'InvalidTokenError', code: 'INVALID_TOKEN' });
    expect(await loginAnswer(t, session.email, NEW_PASSWORD)).toBe('AuthPayload');
  });

  it('refuses a token once PASSWORD_RESET_TTL has passed, and the password stays as it was', async () => {
    const session = await registerUser(t);
    const token = await requestResetToken(t, smtp, session.email);
    t.clock.advance(RESET_TTL);
    expect(await reset(token)).toMatchObject({ __typename: 'InvalidTokenError', code: 'INVALID_TOKEN' });
    expect(await loginAnswer(t, session.email, GOOD_PASSWORD)).toBe('AuthPayload');
  });

  it('invalidates the older token when a newer one is requested', async () => {
    const session = await registerUser(t);
    const older = await requestResetToken(t, smtp, session.email);
    const newer = await requestResetToken(t, smtp, session.email);
    expect(await reset(older)).toMatchObject({ __typename: 'InvalidTokenError' });
    expect((await reset(newer)).__typename).toBe('AuthPayload');
  });

  it('refuses a tampered or malformed token without spending the genuine one', async () => {
    const session = await registerUser(t);
    const token = await requestResetToken(t, smtp, session.email);
    for (const bad of [tamper(token), token.slice(0, -1), `${token.split('.')[0]}.`, '', '../../etc/passwd']) {
      expect(await reset(bad), bad).toMatchObject({ __typename: 'InvalidTokenError', code: 'INVALID_TOKEN' });
    }
    expect((await reset(token)).__typename).toBe('AuthPayload');
  });

  it('refuses an email verification token, which stays usable for verifying', async () => {
    const session = await registerUser(t);
    const verification = await requestVerificationToken(t, smtp, session);
    expect(await reset(verification)).toMatchObject({ __typename: 'InvalidTokenError', code: 'INVALID_TOKEN' });
    expect(await loginAnswer(t, session.email, GOOD_PASSWORD)).toBe('AuthPayload');
    expect((await t.gql(VERIFY_EMAIL, { token: verification })).data?.verifyEmail.__typename).toBe('User');
  });

  it('answers InputError WEAK_PASSWORD on newPassword for a weak password and leaves the link usable', async () => {
    const session = await registerUser(t);
    const token = await requestResetToken(t, smtp, session.email);
    for (const weak of ['short', 'password123', session.email]) {
      expect(await reset(token, weak), weak).toMatchObject({ __typename: 'InputError', code: 'WEAK_PASSWORD', field: 'newPassword' });
    }
    expect(await meWorks(t, session.accessToken)).toBe(true);
    expect((await reset(token)).__typename).toBe('AuthPayload');
  });

  it('sends nothing for a disabled account, and refuses a link mailed before the account was disabled', async () => {
    const session = await registerUser(t);
    const token = await requestResetToken(t, smtp, session.email);
    await t.services.roleAdmin.setUserActive({ kind: 'operator' }, session.userId, false);

    await t.gql(REQUEST_PASSWORD_RESET, { email: session.email });
    await t.services.tasks.idle();
    expect(smtp.mailsTo(session.email)).toHaveLength(1);

    expect(await reset(token)).toMatchObject({ __typename: 'InvalidTokenError', code: 'INVALID_TOKEN' });
    expect(await loginAnswer(t, session.email, NEW_PASSWORD)).toBe('InvalidCredentialsError');
  });

  it('records the request and the reset in the audit log, never the token', async () => {
    const session = await registerUser(t);
    const token = await requestResetToken(t, smtp, session.email);
    await reset(token);
    await reset(token);
    const events = await t.database.db
      .select()
      .from(authEvents)
      .where(and(eq(authEvents.userId, session.userId), sql`${authEvents.type} like 'password_reset%'`));
    expect(events.map((e) => [e.type, e.detail])).toEqual(
      expect.arrayContaining([
        ['password_reset_requested', { sent: true }],
        ['password_reset', expect.objectContaining({ revokedSessions: 1 })],
        ['password_reset', { failed: 'used' }],
      ]),
    );
    const [id, secret] = token.split('.');
    expect(JSON.stringify(events)).not.toContain(secret);
    expect(JSON.stringify(events)).not.toContain(id);
  });

  it('keeps only a hash of the token\'s secret, and the purge deletes spent tokens', async () => {
    const session = await registerUser(t);
    const token = await requestResetToken(t, smtp, session.email);
    const [id, secret] = token.split('.');
    const [row] = await t.database.db.select().from(oneTimeTokens).where(eq(oneTimeTokens.id, id!));
    expect(row).toMatchObject({ userId: session.userId, purpose: 'reset_password', usedAt: null });
    expect(row!.secretHash).not.toContain(secret);
    expect(row!.secretHash).toMatch(/^[0-9a-f]{64}$/);
    expect(row!.expiresAt.getTime() - t.clock.now().getTime()).toBe(RESET_TTL * 1000);

    await reset(token);
    const counts = await purgeExpired(t.services);
    expect(counts.oneTimeTokens).toBeGreaterThanOrEqual(1);
    expect(await t.database.db.select().from(oneTimeTokens).where(eq(oneTimeTokens.id, id!))).toEqual([]);
  });
});

describe('links mailed before a change to the account', () => {
  const changePassword = (accessToken: string) =>
    t.gql(CHANGE_PASSWORD, { current: GOOD_PASSWORD, next: NEW_PASSWORD }, { token: accessToken });

  it('a password change ends every reset link mailed before it', async () => {
    const session = await registerUser(t);
    const token = await requestResetToken(t, smtp, session.email);
    expect((await changePassword(session.accessToken)).data?.changePassword.__typename).toBe('AuthPayload');
    expect(await reset(token, 'late-Reset-42-attempt')).toMatchObject({ __typename: 'InvalidTokenError', code: 'INVALID_TOKEN' });
    expect(await loginAnswer(t, session.email, NEW_PASSWORD)).toBe('AuthPayload');
  });

  it('a reset link asked for after the change works', async () => {
    const session = await registerUser(t);
    await changePassword(session.accessToken);
    const token = await requestResetToken(t, smtp, session.email);
    expect((await reset(token, 'later-Reset-42-works')).__typename).toBe('AuthPayload');
  });

  it('disabling an account ends its reset and verification links, also once it is enabled again', async () => {
    const admin = await registerAdmin(t);
    const session = await registerUser(t);
    const verification = await requestVerificationToken(t, smtp, session);
    const resetToken = await requestResetToken(t, smtp, session.email);
    for (const active of [false, true]) {
      const res = await t.gql(SET_USER_ACTIVE, { userId: session.userId, active }, { token: admin.accessToken });
      expect(res.data?.setUserActive.active).toBe(active);
    }
    expect((await reset(resetToken)).__typename).toBe('InvalidTokenError');
    expect((await t.gql(VERIFY_EMAIL, { token: verification })).data?.verifyEmail.__typename).toBe('InvalidTokenError');
    expect((await userRow(t, session.userId)).emailVerified).toBe(false);
  });

  it('a verification link survives a password change: it proves the mailbox, not the password', async () => {
    const session = await registerUser(t);
    const verification = await requestVerificationToken(t, smtp, session);
    await changePassword(session.accessToken);
    expect((await t.gql(VERIFY_EMAIL, { token: verification })).data?.verifyEmail).toMatchObject({
      __typename: 'User',
      emailVerified: true,
    });
  });
});

describe('without SMTP_URL (development outbox)', () => {
  let dataDir: string;
  let local: TestApp;
  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'authgraph-outbox-'));
    local = await createTestApp({ DATA_DIR: dataDir }, t.database);
  });
  afterAll(async () => {
    await local.services.tasks.idle();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('lets a newcomer reset by hand: the token, read from the outbox .txt as plain text, sets the password', async () => {
    const session = await registerUser(local);
    await local.gql(REQUEST_PASSWORD_RESET, { email: session.email });
    await local.services.tasks.idle();
    const outbox = path.join(dataDir, 'outbox');
    const [txt] = readdirSync(outbox).filter((f) => f.endsWith('.txt'));
    // No MIME decoding: the file is read as an editor shows it.
    const text = readFileSync(path.join(outbox, txt!), 'utf8');
    expect(text).toMatch(new RegExp(`^To: ${session.email}$`, 'm'));
    const token = /^Token: (\S+)$/m.exec(text)?.[1];
    expect(text).toContain(`http://127.0.0.1:4000/reset-password?token=${token}\n`);
    expect(await reset(token!, NEW_PASSWORD, local)).toMatchObject({ __typename: 'AuthPayload', user: { id: session.userId } });
    expect(await loginAnswer(local, session.email, NEW_PASSWORD)).toBe('AuthPayload');
  });
});

// PGlite runs one transaction at a time; only the real server shows whether the row lock holds.
describe.runIf(onPostgres)('password reset on PostgreSQL', () => {
  it('answers one AuthPayload, and InvalidTokenError to the rest, when one token is used 5 times at once', async () => {
    const session = await registerUser(t);
    const token = await requestResetToken(t, smtp, session.email);
    // Warm the pool so the five requests really run side by side.
    await Promise.all(Array.from({ length: 8 }, () => t.database.db.execute(sql`select pg_sleep(0.05)`)));
    const results = await Promise.all(
      Array.from({ length: 5 }, (_, i) => reset(token, `${NEW_PASSWORD}-${i}`)),
    );
    const kinds = results.map((r) => r.__typename).sort();
    expect(kinds).toEqual(['AuthPayload', 'InvalidTokenError', 'InvalidTokenError', 'InvalidTokenError', 'InvalidTokenError']);
    const winner = results.findIndex((r) => r.__typename === 'AuthPayload');
    expect(await loginAnswer(t, session.email, `${NEW_PASSWORD}-${winner}`)).toBe('AuthPayload');
    const listed = await t.gql(MY_SESSIONS, {}, { token: results[winner]!.accessToken });
    expect(listed.data?.me.sessions).toHaveLength(2); // the reset's session and the login just above
  });
});
