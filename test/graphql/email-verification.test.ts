import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onPostgres } from '../support/database.js';
import {
  NEW_PASSWORD,
  REQUEST_EMAIL_VERIFICATION,
  RESET_PASSWORD,
  VERIFY_EMAIL,
  requestResetToken,
  requestVerificationToken,
  tamper,
} from '../support/account.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { expectUnauthenticated } from '../support/forge.js';
import { GOOD_PASSWORD, LOGIN, ME, registerUser, uniqueEmail } from '../support/operations.js';
import { userRow } from '../support/rows.js';
import { decodeMail, headerOf, linkIn, startSmtpServer, type TestSmtpServer } from '../support/smtp.js';

const PUBLIC_URL = 'https://accounts.example.test/app/';
const MAIL_FROM = 'Example Accounts <accounts@example.test>';
const VERIFICATION_TTL = 86_400;

let smtp: TestSmtpServer;
let t: TestApp;
beforeAll(async () => {
  smtp = await startSmtpServer();
  t = await createTestApp({ SMTP_URL: smtp.url, PUBLIC_URL, MAIL_FROM, EMAIL_VERIFICATION_TTL: String(VERIFICATION_TTL) });
});
afterAll(async () => {
  await t.services.tasks.idle();
  await t.close();
  await smtp.close();
});

async function verify(token: string) {
  const res = await t.gql(VERIFY_EMAIL, { token });
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!.verifyEmail;
}

const isVerified = async (userId: string) => (await userRow(t, userId)).emailVerified;

describe('email verification', () => {
  it('mails the signed-in user a link whose token verifies the address', async () => {
    const session = await registerUser(t);
    expect(await isVerified(session.userId)).toBe(false);

    const res = await t.gql(REQUEST_EMAIL_VERIFICATION, {}, { token: session.accessToken });
    expect(res).toMatchObject({ data: { requestEmailVerification: true } });
    const mail = await smtp.nextMailTo(session.email);
    expect(headerOf(mail, 'subject')).toBe('Verify your email address');
    expect(headerOf(mail, 'from')).toBe(MAIL_FROM);
    expect(headerOf(mail, 'to')).toBe(session.email);
    expect(mail.raw).toMatch(/multipart\/alternative/);
    expect(mail.raw).toMatch(/text\/plain/);
    expect(mail.raw).toMatch(/text\/html/);
    const { link, token } = linkIn(mail, 'verify-email');
    expect(link).toBe(`https://accounts.example.test/app/verify-email?token=${token}`);
    expect(decodeMail(mail.raw)).toContain('expires in 24 hours');

    expect(await verify(token)).toEqual({ __typename: 'User', id: session.userId, emailVerified: true });
    expect(await isVerified(session.userId)).toBe(true);
    const me = await t.gql(ME, {}, { token: session.accessToken });
    expect(me.data?.me.emailVerified).toBe(true);
  });

  it('accepts a token once: the second use answers InvalidTokenError', async () => {
    const session = await registerUser(t);
    const token = await requestVerificationToken(t, smtp, session);
    expect((await verify(token)).__typename).toBe('User');
    expect(await verify(token)).toMatchObject({ __typename: 'InvalidTokenError', code: 'INVALID_TOKEN' });
  });

  it('refuses a token once EMAIL_VERIFICATION_TTL has passed, and the address stays unverified', async () => {
    const session = await registerUser(t);
    const token = await requestVerificationToken(t, smtp, session);
    t.clock.advance(VERIFICATION_TTL);
    expect(await verify(token)).toMatchObject({ __typename: 'InvalidTokenError', code: 'INVALID_TOKEN' });
    expect(await isVerified(session.userId)).toBe(false);
  });

  it('accepts a token until just before it expires', async () => {
    const session = await registerUser(t);
    const token = await requestVerificationToken(t, smtp, session);
    t.clock.advance(VERIFICATION_TTL - 1);
    expect((await verify(token)).__typename).toBe('User');
  });

  it('invalidates the older token when a newer one is requested', async () => {
    const session = await registerUser(t);
    const older = await requestVerificationToken(t, smtp, session);
    const newer = await requestVerificationToken(t, smtp, session);
    expect(newer).not.toBe(older);
    expect(await verify(older)).toMatchObject({ __typename: 'InvalidTokenError' });
    expect((await verify(newer)).__typename).toBe('User');
  });

  it('refuses a tampered or malformed token without spending the genuine one', async () => {
    const session = await registerUser(t);
    const token = await requestVerificationToken(t, smtp, session);
    const [id] = token.split('.');
    for (const bad of [tamper(token), `${id}.${'A'.repeat(43)}`, token.slice(0, -1), `${token}x`, '', 'not a token', `${token}.${token}`]) {
      expect(await verify(bad), bad).toMatchObject({ __typename: 'InvalidTokenError', code: 'INVALID_TOKEN' });
    }
    expect(await isVerified(session.userId)).toBe(false);
    expect((await verify(token)).__typename).toBe('User');
  });

  it('refuses a password reset token, which stays usable for resetting', async () => {
    const session = await registerUser(t);
    const resetToken = await requestResetToken(t, smtp, session.email);
    expect(await verify(resetToken)).toMatchObject({ __typename: 'InvalidTokenError', code: 'INVALID_TOKEN' });
    expect(await isVerified(session.userId)).toBe(false);
    const reset = await t.gql(RESET_PASSWORD, { token: resetToken, password: NEW_PASSWORD });
    expect(reset.data?.resetPassword.__typename).toBe('AuthPayload');
  });

  it('sends nothing when the address is verified already', async () => {
    const session = await registerUser(t);
    await verify(await requestVerificationToken(t, smtp, session));
    const res = await t.gql(REQUEST_EMAIL_VERIFICATION, {}, { token: session.accessToken });
    expect(res).toMatchObject({ data: { requestEmailVerification: true } });
    expect(smtp.mailsTo(session.email)).toHaveLength(1);
  });

  it('answers UNAUTHENTICATED to requestEmailVerification without an access token', async () => {
    expectUnauthenticated(await t.gql(REQUEST_EMAIL_VERIFICATION), 'requestEmailVerification', { nullable: false });
  });

  it('greets the user by name, HTML-escaped in the HTML part and on one line in both', async () => {
    const name = '<b>Eve</b> & "Co"\nClick https://evil.example';
    const session = await registerUser(t, { name });
    await t.gql(REQUEST_EMAIL_VERIFICATION, {}, { token: session.accessToken });
    const body = decodeMail((await smtp.nextMailTo(session.email)).raw);
    expect(body).toContain('<p>Hello &lt;b&gt;Eve&lt;/b&gt; &amp; &quot;Co&quot; Click https://evil.example,</p>');
    expect(body).toContain('Hello <b>Eve</b> & "Co" Click https://evil.example,');
    expect(body).not.toContain('<b>Eve</b> & "Co"\n');
  });

  it('never shows a verified user\'s email to an anonymous caller of verifyEmail', async () => {
    const session = await registerUser(t);
    const token = await requestVerificationToken(t, smtp, session);
    const res = await t.gql(`mutation V($token: String!) { verifyEmail(token: $token) { ... on User { id email } } }`, { token });
    expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['UNAUTHENTICATED']);
  });
});

describe('REQUIRE_EMAIL_VERIFICATION=true', () => {
  let strict: TestApp;
  beforeAll(async () => {
    strict = await createTestApp({ SMTP_URL: smtp.url, REQUIRE_EMAIL_VERIFICATION: 'true' }, t.database);
  });

  const login = async (app: TestApp, email: string, password: string) =>
    (await app.gql(LOGIN, { input: { email, password } })).data?.login;

  it('answers EmailNotVerifiedError to an unverified user, only once the password is right', async () => {
    const session = await registerUser(t);
    expect(await login(strict, session.email, GOOD_PASSWORD)).toMatchObject({
      __typename: 'EmailNotVerifiedError',
      code: 'EMAIL_NOT_VERIFIED',
    });
    expect(await login(strict, session.email, 'wrong-password-123')).toMatchObject({ __typename: 'InvalidCredentialsError' });
    expect(await login(strict, uniqueEmail('nobody'), GOOD_PASSWORD)).toMatchObject({ __typename: 'InvalidCredentialsError' });
  });

  it('signs the user in once the address is verified', async () => {
    const session = await registerUser(t);
    await verify(await requestVerificationToken(t, smtp, session));
    expect(await login(strict, session.email, GOOD_PASSWORD)).toMatchObject({ __typename: 'AuthPayload' });
  });

  it('is off by default: an unverified user signs in', async () => {
    const session = await registerUser(t);
    expect(await login(t, session.email, GOOD_PASSWORD)).toMatchObject({ __typename: 'AuthPayload' });
  });
});

describe('without SMTP_URL (development outbox)', () => {
  let dataDir: string;
  let local: TestApp;
  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'authgraph-outbox-'));
    // No PUBLIC_URL: links point at this server as HOST and PORT configure it.
    local = await createTestApp({ DATA_DIR: dataDir, HOST: '0.0.0.0', PORT: '8080' }, t.database);
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('writes each mail to DATA_DIR/outbox as an .eml and a .txt file, readable by their owner only', async () => {
    const session = await registerUser(local);
    const res = await local.gql(REQUEST_EMAIL_VERIFICATION, {}, { token: session.accessToken });
    expect(res).toMatchObject({ data: { requestEmailVerification: true } });

    const outbox = path.join(dataDir, 'outbox');
    const files = readdirSync(outbox).sort();
    expect(files).toHaveLength(2);
    expect(files[0]).toMatch(/\.eml$/);
    expect(files[1]).toBe(files[0]!.replace(/\.eml$/, '.txt'));
    for (const file of files) expect(statSync(path.join(outbox, file)).mode & 0o777).toBe(0o600);
    const raw = readFileSync(path.join(outbox, files[0]!), 'utf8');
    expect(raw).toMatch(new RegExp(`^To: ${session.email}$`, 'm'));
    const { link, token } = linkIn(raw, 'verify-email');
    // HOST 0.0.0.0 is shown as localhost; PORT is kept.
    expect(link).toBe(`http://localhost:8080/verify-email?token=${token}`);
  });

  it('lets a newcomer verify by hand: the token, read from the .txt as plain text, verifies the address', async () => {
    const session = await registerUser(local);
    await local.gql(REQUEST_EMAIL_VERIFICATION, {}, { token: session.accessToken });
    const outbox = path.join(dataDir, 'outbox');
    const txt = readdirSync(outbox).filter((f) => f.endsWith('.txt')).map((f) => readFileSync(path.join(outbox, f), 'utf8'))
      .find((text) => text.includes(`To: ${session.email}\n`));
    // No MIME decoding: the file is read as an editor shows it.
    const token = /^Token: (\S+)$/m.exec(txt!)?.[1];
    expect(txt).toContain(`http://localhost:8080/verify-email?token=${token}\n`);
    expect(await local.gql(VERIFY_EMAIL, { token })).toMatchObject({ data: { verifyEmail: { __typename: 'User', emailVerified: true } } });
    expect(await isVerified(session.userId)).toBe(true);
  });
});

describe.runIf(onPostgres)('email verification racing a new verification mail on PostgreSQL', () => {
  it('never deadlocks: both lock the account before its tokens, and each answers cleanly', async () => {
    for (let round = 0; round < 25; round += 1) {
      const session = await registerUser(t);
      const token = await requestVerificationToken(t, smtp, session);
      const [verified, requested] = await Promise.all([
        t.gql(VERIFY_EMAIL, { token }),
        t.gql(REQUEST_EMAIL_VERIFICATION, {}, { token: session.accessToken }),
      ]);
      expect(verified.errors, JSON.stringify(verified.errors)).toBeUndefined();
      expect(requested.errors, JSON.stringify(requested.errors)).toBeUndefined();
      // Either the link won (verified, so no new mail) or the new mail replaced it first.
      expect(['User', 'InvalidTokenError']).toContain(verified.data?.verifyEmail.__typename);
      await t.services.tasks.idle();
    }
  }, 120_000);
});
