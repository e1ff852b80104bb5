/**
 * TOTP and recovery codes end to end over a real port, with a frozen clock: enrolment pending
 * until confirmed, codes of the previous/current/next step accepted once, two steps off refused,
 * recovery codes once and never twice, secrets sealed at rest, factor changes signing out the
 * user's other sessions.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recoveryCodes, totpCredentials } from '../../src/db/schema.js';
import { GOOD_PASSWORD, loginUser, ME_ID } from '../support/operations.js';
import { serveTestApp, type ServedApp } from '../support/served.js';
import {
  COMPLETE_SIGN_IN,
  CONFIRM_TOTP,
  DISABLE_TOTP,
  ENROLL_TOTP,
  enableTotp,
  eventsOf,
  LOGIN_2FA,
  MY_FACTORS,
  REAUTHENTICATE,
  REGENERATE_RECOVERY_CODES,
  refusalCode,
  totpCode,
  registerVerifiedUser,
} from './support.js';

let s: ServedApp;
beforeAll(async () => {
  s = await serveTestApp();
});
afterAll(async () => {
  await s?.close();
});

/** Seconds to a point 10 s into the next 30-second step, so that ±1 step is unambiguous. */
function alignClock(app: ServedApp) {
  const intoStep = (app.t.clock.now().getTime() / 1000) % 30;
  app.t.clock.advance(30 - intoStep + 10);
}
const at = (seconds: number) => new Date(s.t.clock.now().getTime() + seconds * 1000);
const reauthWith = (token: string, code: string) => s.gql(REAUTHENTICATE, { code }, { token });

/** Another session of a user with TOTP, signed in with the password and a code of the next step; its access token. */
async function passwordAndCode(email: string, secret: string): Promise<string> {
  s.t.clock.advance(30);
  const res = await s.gql(LOGIN_2FA, { input: { email, password: GOOD_PASSWORD } });
  const done = await s.gql(COMPLETE_SIGN_IN, { challenge: res.data!.login.challenge, code: totpCode(secret, s.t.clock.now()) });
  expect(done.data?.completeSignIn.__typename, JSON.stringify(done)).toBe('AuthPayload');
  return done.data!.completeSignIn.accessToken;
}

describe('enrolTotp and confirmTotp', () => {
  it('hands out a base32 secret, its otpauth URI and an SVG QR code, and keeps the secret sealed at rest', async () => {
    const user = await registerVerifiedUser(s);
    const res = await s.gql(ENROLL_TOTP, {}, { token: user.accessToken });
    const { secret, otpauthUri, qrCodeSvg } = res.data!.enrollTotp;
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    const uri = new URL(otpauthUri);
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.searchParams.get('secret')).toBe(secret);
    expect(uri.searchParams.get('algorithm')).toBe('SHA1');
    expect(uri.searchParams.get('digits')).toBe('6');
    expect(uri.searchParams.get('period')).toBe('30');
    expect(decodeURIComponent(uri.pathname)).toContain(user.email);
    expect(qrCodeSvg).toMatch(/^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    const [row] = await s.t.database.db.select().from(totpCredentials).where(eq(totpCredentials.userId, user.userId));
    expect(row!.pendingSecret).toMatch(/^v1\./);
    expect(JSON.stringify(row)).not.toContain(secret);
  });

  it('keeps a pending secret inactive: no second factor listed, its codes pass nothing', async () => {
    const user = await registerVerifiedUser(s);
    const { secret } = (await s.gql(ENROLL_TOTP, {}, { token: user.accessToken })).data!.enrollTotp;
    expect((await s.gql(MY_FACTORS, {}, { token: user.accessToken })).data?.me.secondFactors).toEqual([]);
    const res = await reauthWith(user.accessToken, totpCode(secret, s.t.clock.now()));
    expect(res.data?.reauthenticate.__typename).toBe('InvalidSecondFactorError');
  });

  it('refuses a wrong confirmation code and leaves the factor off', async () => {
    const user = await registerVerifiedUser(s);
    const { secret } = (await s.gql(ENROLL_TOTP, {}, { token: user.accessToken })).data!.enrollTotp;
    alignClock(s);
    const wrong = await s.gql(CONFIRM_TOTP, { code: totpCode(secret, at(-120)) }, { token: user.accessToken });
    expect(wrong.data?.confirmTotp).toMatchObject({ __typename: 'InvalidSecondFactorError', code: 'INVALID_SECOND_FACTOR' });
    expect((await s.gql(MY_FACTORS, {}, { token: user.accessToken })).data?.me.secondFactors).toEqual([]);
  });

  it('turns TOTP on with a current code, answers 10 distinct recovery codes once, and lists both factors', async () => {
    const user = await registerVerifiedUser(s);
    const { codes } = await enableTotp(s, user.accessToken);
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const code of codes) expect(code).toMatch(/^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
    expect((await s.gql(MY_FACTORS, {}, { token: user.accessToken })).data?.me.secondFactors).toEqual(['TOTP', 'RECOVERY_CODE']);
    const stored = await s.t.database.db.select().from(recoveryCodes).where(eq(recoveryCodes.userId, user.userId));
    expect(stored).toHaveLength(10);
    for (const code of codes) expect(JSON.stringify(stored)).not.toContain(code.replace(/-/g, ''));
    const events = await eventsOf(s, user.userId, ['second_factor_added']);
    expect(events.map((e) => e.detail)).toEqual([expect.objectContaining({ method: 'TOTP' })]);
  });

  it("signs out the user's other sessions when the codes are regenerated or TOTP is turned off", async () => {
    const user = await registerVerifiedUser(s);
    const { secret } = await enableTotp(s, user.accessToken);
    const mine = await passwordAndCode(user.email, secret);
    const second = await passwordAndCode(user.email, secret);
    expect((await s.gql(REGENERATE_RECOVERY_CODES, {}, { token: mine })).errors).toBeUndefined();
    expect(refusalCode(await s.gql(ME_ID, {}, { token: second }))).toBe('UNAUTHENTICATED');
    expect(refusalCode(await s.gql(ME_ID, {}, { token: user.accessToken }))).toBe('UNAUTHENTICATED');
    const third = await passwordAndCode(user.email, secret);
    expect((await s.gql(DISABLE_TOTP, {}, { token: mine })).data?.disableTotp).toBe(true);
    expect(refusalCode(await s.gql(ME_ID, {}, { token: third }))).toBe('UNAUTHENTICATED');
    expect((await s.gql(ME_ID, {}, { token: mine })).data?.me.id).toBe(user.userId);
  });

  it("signs out the user's other sessions, not the one that turned TOTP on", async () => {
    const user = await registerVerifiedUser(s);
    const other = await loginUser(s, user.email);
    await enableTotp(s, user.accessToken);
    expect(refusalCode(await s.gql(ME_ID, {}, { token: other.accessToken }))).toBe('UNAUTHENTICATED');
    expect((await s.gql(ME_ID, {}, { token: user.accessToken })).data?.me.id).toBe(user.userId);
  });

  it('shows secondFactors to the user themself only', async () => {
    const user = await registerVerifiedUser(s);
    const stranger = await registerVerifiedUser(s);
    const res = await s.gql(`query U($id: ID!) { user(id: $id) { id } }`, { id: stranger.userId }, { token: user.accessToken });
    expect(refusalCode(res)).toBe('FORBIDDEN');
    const own = await s.gql(`query U($id: ID!) { user(id: $id) { secondFactors } }`, { id: user.userId }, { token: user.accessToken });
    expect(own.data?.user.secondFactors).toEqual([]);
  });
});

describe('codes of an authenticator app (through reauthenticate)', () => {
  async function withTotp() {
    const user = await registerVerifiedUser(s);
    const { secret, codes } = await enableTotp(s, user.accessToken);
    alignClock(s);
    s.t.clock.advance(60); // past the steps around the confirmation code, which is spent
    return { user, secret, codes };
  }

  it('accepts the current code and gives the session its second factor: amr ["pwd","otp"]', async () => {
    const { user, secret } = await withTotp();
    const res = await reauthWith(user.accessToken, totpCode(secret, s.t.clock.now()));
    expect(res.data?.reauthenticate).toMatchObject({ __typename: 'Reauthentication', amr: ['pwd', 'otp'] });
  });

  it('refuses a code once accepted, for the rest of its validity', async () => {
    const { user, secret } = await withTotp();
    const code = totpCode(secret, s.t.clock.now());
    expect((await reauthWith(user.accessToken, code)).data?.reauthenticate.__typename).toBe('Reauthentication');
    expect((await reauthWith(user.accessToken, code)).data?.reauthenticate.__typename).toBe('InvalidSecondFactorError');
    s.t.clock.advance(30); // the code is now the previous step's: still within the window, still spent
    expect((await reauthWith(user.accessToken, code)).data?.reauthenticate.__typename).toBe('InvalidSecondFactorError');
  });

  it('accepts the code of the previous step and of the next step', async () => {
    const { user, secret } = await withTotp();
    expect((await reauthWith(user.accessToken, totpCode(secret, at(-30)))).data?.reauthenticate.__typename).toBe('Reauthentication');
    expect((await reauthWith(user.accessToken, totpCode(secret, at(30)))).data?.reauthenticate.__typename).toBe('Reauthentication');
  });

  it('refuses codes two steps off, before and after', async () => {
    const { user, secret } = await withTotp();
    expect((await reauthWith(user.accessToken, totpCode(secret, at(-60)))).data?.reauthenticate.__typename).toBe('InvalidSecondFactorError');
    expect((await reauthWith(user.accessToken, totpCode(secret, at(60)))).data?.reauthenticate.__typename).toBe('InvalidSecondFactorError');
  });

  it('refuses, after a later code was accepted, an earlier one not used yet', async () => {
    const { user, secret } = await withTotp();
    expect((await reauthWith(user.accessToken, totpCode(secret, at(30)))).data?.reauthenticate.__typename).toBe('Reauthentication');
    expect((await reauthWith(user.accessToken, totpCode(secret, s.t.clock.now()))).data?.reauthenticate.__typename).toBe(
      'InvalidSecondFactorError',
    );
  });

  it('audits every failed code', async () => {
    const { user, secret } = await withTotp();
    await reauthWith(user.accessToken, totpCode(secret, at(-90)));
    await reauthWith(user.accessToken, 'AAAA-BBBB-CCCC-DDDD');
    const events = await eventsOf(s, user.userId, ['second_factor_failure']);
    // Both at the same frozen instant: their order is not told.
    expect(events.map((e) => e.detail)).toHaveLength(2);
    expect(events.map((e) => e.detail)).toEqual(
      expect.arrayContaining([
        { use: 'reauthenticate', method: 'TOTP' },
        { use: 'reauthenticate', method: 'RECOVERY_CODE' },
      ]),
    );
  });
});

describe('recovery codes', () => {
  it('work once, and never twice', async () => {
    const user = await registerVerifiedUser(s);
    const { codes } = await enableTotp(s, user.accessToken);
    const first = await reauthWith(user.accessToken, codes[3]!);
    expect(first.data?.reauthenticate).toMatchObject({ __typename: 'Reauthentication', amr: ['pwd', 'otp'] });
    expect((await reauthWith(user.accessToken, codes[3]!)).data?.reauthenticate.__typename).toBe('InvalidSecondFactorError');
    expect((await reauthWith(user.accessToken, codes[4]!.toLowerCase().replace(/-/g, ' '))).data?.reauthenticate.__typename).toBe(
      'Reauthentication',
    );
  });

  it("are not another user's", async () => {
    const owner = await registerVerifiedUser(s);
    const { codes } = await enableTotp(s, owner.accessToken);
    const other = await registerVerifiedUser(s);
    await enableTotp(s, other.accessToken);
    expect((await reauthWith(other.accessToken, codes[0]!)).data?.reauthenticate.__typename).toBe('InvalidSecondFactorError');
  });

  it('regenerating needs a recent sign-in (the password renews one that passed the factor), and invalidates the old set', async () => {
    const user = await registerVerifiedUser(s);
    const { secret, codes } = await enableTotp(s, user.accessToken);
    const token = await passwordAndCode(user.email, secret);
    s.t.clock.advance(301);
    expect(refusalCode(await s.gql(REGENERATE_RECOVERY_CODES, {}, { token }))).toBe('REAUTHENTICATION_REQUIRED');
    const fresh = (await s.gql(REAUTHENTICATE, { password: GOOD_PASSWORD }, { token })).data!.reauthenticate;
    const res = await s.gql(REGENERATE_RECOVERY_CODES, {}, { token: fresh.accessToken });
    const renewed: string[] = res.data!.regenerateRecoveryCodes.codes;
    expect(renewed).toHaveLength(10);
    expect((await reauthWith(fresh.accessToken, codes[0]!)).data?.reauthenticate.__typename).toBe('InvalidSecondFactorError');
    expect((await reauthWith(fresh.accessToken, renewed[0]!)).data?.reauthenticate.__typename).toBe('Reauthentication');
  });

  it('cannot be regenerated without a second factor: SECOND_FACTOR_REQUIRED for a session that passed none, NO_SECOND_FACTOR once the factor is off', async () => {
    const user = await registerVerifiedUser(s);
    expect(refusalCode(await s.gql(REGENERATE_RECOVERY_CODES, {}, { token: user.accessToken }))).toBe('SECOND_FACTOR_REQUIRED');
    const { secret } = await enableTotp(s, user.accessToken);
    const token = await passwordAndCode(user.email, secret);
    expect((await s.gql(DISABLE_TOTP, {}, { token })).data?.disableTotp).toBe(true);
    expect(refusalCode(await s.gql(REGENERATE_RECOVERY_CODES, {}, { token }))).toBe('NO_SECOND_FACTOR');
  });
});

describe('disableTotp', () => {
  it('needs a recent sign-in, then turns TOTP and the recovery codes off and audits the last factor removed', async () => {
    const user = await registerVerifiedUser(s);
    const { secret, codes } = await enableTotp(s, user.accessToken);
    const token = await passwordAndCode(user.email, secret);
    s.t.clock.advance(301);
    expect(refusalCode(await s.gql(DISABLE_TOTP, {}, { token }))).toBe('REAUTHENTICATION_REQUIRED');
    expect((await s.gql(MY_FACTORS, {}, { token })).data?.me.secondFactors).toEqual(['TOTP', 'RECOVERY_CODE']);
    const fresh = (await s.gql(REAUTHENTICATE, { password: GOOD_PASSWORD }, { token })).data!.reauthenticate;
    expect((await s.gql(DISABLE_TOTP, {}, { token: fresh.accessToken })).data?.disableTotp).toBe(true);
    expect((await s.gql(MY_FACTORS, {}, { token: fresh.accessToken })).data?.me.secondFactors).toEqual([]);
    expect((await reauthWith(fresh.accessToken, codes[0]!)).data?.reauthenticate.__typename).toBe('InvalidSecondFactorError');
    const [removed] = await eventsOf(s, user.userId, ['second_factor_removed']);
    expect(removed!.detail).toMatchObject({ method: 'TOTP', lastFactor: true });
    expect((await s.gql(DISABLE_TOTP, {}, { token: fresh.accessToken })).data?.disableTotp).toBe(false);
  });
});
