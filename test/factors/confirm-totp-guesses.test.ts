/**
 * confirmTotp needs no recent sign-in, so a stale session (stolen long ago) could guess the code
 * of a secret its owner enrolled and did not confirm yet; a hit would turn TOTP on with the
 * owner's secret, hand the recovery codes to the guesser and sign the owner out (review, issue
 * 14). A pending secret therefore takes at most 5 codes, whatever RATE_LIMITS says, and can be
 * confirmed for 10 minutes after enrollTotp; then only enrolling again helps.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recoveryCodes } from '../../src/db/schema.js';
import { onPostgres } from '../support/database.js';
import { loginUser, registerUser, type Session } from '../support/operations.js';
import { serveTestApp, type ServedApp } from '../support/served.js';
import { CONFIRM_TOTP, ENROLL_TOTP, eventsOf, MY_FACTORS, registerVerifiedUser, totpCode } from './support.js';

/** A 6-digit code that is none of the codes of the previous, current and next step. */
function wrongCode(secret: string, now: Date, i: number): string {
  const valid = new Set([-30_000, 0, 30_000].map((d) => totpCode(secret, new Date(now.getTime() + d))));
  for (let n = i; ; n++) {
    const code = String(n).padStart(6, '0');
    if (!valid.has(code)) return code;
  }
}

/** The owner with a pending secret (enrolled from a fresh session), and a session stolen before that and no longer recent. */
async function ownerWithPendingSecret(app: ServedApp): Promise<{ owner: Session; thief: Session; secret: string }> {
  const registered = await registerVerifiedUser(app);
  const thief = await loginUser(app.t, registered.email); // a session stolen now, used later
  app.t.clock.advance(301); // no longer recent: it could not enrol a secret itself
  const owner = await loginUser(app.t, registered.email);
  const enrolled = await app.gql(ENROLL_TOTP, {}, { token: owner.accessToken });
  expect(enrolled.errors, JSON.stringify(enrolled)).toBeUndefined();
  return { owner, thief, secret: enrolled.data!.enrollTotp.secret };
}

let s: ServedApp;
beforeAll(async () => {
  s = await serveTestApp({ RATE_LIMITS: 'off' });
});
afterAll(async () => {
  await s?.close();
});

const confirmWith = (app: ServedApp, token: string, code: string) => app.gql(CONFIRM_TOTP, { code }, { token });

/** The reasons of the user's refused confirmations, sorted (the frozen clock gives them one instant). */
async function confirmRefusals(app: ServedApp, userId: string): Promise<string[]> {
  const events = await eventsOf(app, userId, ['second_factor_failure']);
  return events
    .filter((e) => (e.detail as { use?: string }).use === 'confirm_totp')
    .map((e) => String((e.detail as { reason?: string }).reason))
    .sort();
}

describe('confirmTotp guesses at a pending secret (RATE_LIMITS=off)', () => {
  it('refuses even the right code after 5 wrong ones: TOTP stays off and no recovery codes are issued', async () => {
    const { owner, thief, secret } = await ownerWithPendingSecret(s);
    for (let i = 0; i < 5; i++) {
      const res = await confirmWith(s, thief.accessToken, wrongCode(secret, s.t.clock.now(), i));
      expect(res.data?.confirmTotp.__typename, JSON.stringify(res)).toBe('InvalidSecondFactorError');
    }
    const hit = await confirmWith(s, thief.accessToken, totpCode(secret, s.t.clock.now()));
    expect(hit.data?.confirmTotp.__typename, JSON.stringify(hit)).toBe('InvalidSecondFactorError');
    expect(hit.data?.confirmTotp.code).toBe('INVALID_SECOND_FACTOR');
    // The secret is dead for the owner's session too.
    const byOwner = await confirmWith(s, owner.accessToken, totpCode(secret, s.t.clock.now()));
    expect(byOwner.data?.confirmTotp.__typename, JSON.stringify(byOwner)).toBe('InvalidSecondFactorError');
    expect((await s.gql(MY_FACTORS, {}, { token: owner.accessToken })).data?.me.secondFactors).toEqual([]);
    expect(await s.t.database.db.select().from(recoveryCodes).where(eq(recoveryCodes.userId, owner.userId))).toEqual([]);
    expect(await confirmRefusals(s, owner.userId)).toEqual(['exhausted', 'exhausted', ...Array(5).fill('wrong_code')]);
  });

  it('accepts the right code as the 5th', async () => {
    const { owner, secret } = await ownerWithPendingSecret(s);
    for (let i = 0; i < 4; i++) await confirmWith(s, owner.accessToken, wrongCode(secret, s.t.clock.now(), i));
    const res = await confirmWith(s, owner.accessToken, totpCode(secret, s.t.clock.now()));
    expect(res.data?.confirmTotp.__typename, JSON.stringify(res)).toBe('RecoveryCodes');
    expect((await s.gql(MY_FACTORS, {}, { token: owner.accessToken })).data?.me.secondFactors).toEqual(['TOTP', 'RECOVERY_CODE']);
  });

  it('confirms a secret enrolled again after the old one died, with a fresh count', async () => {
    const { owner, secret } = await ownerWithPendingSecret(s);
    for (let i = 0; i < 5; i++) await confirmWith(s, owner.accessToken, wrongCode(secret, s.t.clock.now(), i));
    const again = await s.gql(ENROLL_TOTP, {}, { token: owner.accessToken });
    const renewed: string = again.data!.enrollTotp.secret;
    for (let i = 0; i < 4; i++) {
      const res = await confirmWith(s, owner.accessToken, wrongCode(renewed, s.t.clock.now(), i));
      expect(res.data?.confirmTotp.__typename, JSON.stringify(res)).toBe('InvalidSecondFactorError');
    }
    const res = await confirmWith(s, owner.accessToken, totpCode(renewed, s.t.clock.now()));
    expect(res.data?.confirmTotp.__typename, JSON.stringify(res)).toBe('RecoveryCodes');
    expect(res.data!.confirmTotp.codes).toHaveLength(10);
    expect((await s.gql(MY_FACTORS, {}, { token: owner.accessToken })).data?.me.secondFactors).toEqual(['TOTP', 'RECOVERY_CODE']);
  });

  it('refuses the right code of a secret enrolled over 10 minutes ago', async () => {
    const { owner, secret } = await ownerWithPendingSecret(s);
    s.t.clock.advance(10 * 60 + 1);
    const res = await confirmWith(s, owner.accessToken, totpCode(secret, s.t.clock.now()));
    expect(res.data?.confirmTotp.__typename, JSON.stringify(res)).toBe('InvalidSecondFactorError');
    expect((await s.gql(MY_FACTORS, {}, { token: owner.accessToken })).data?.me.secondFactors).toEqual([]);
    expect(await confirmRefusals(s, owner.userId)).toEqual(['expired']);
  });

  it('confirms a secret enrolled just under 10 minutes ago', async () => {
    const { owner, secret } = await ownerWithPendingSecret(s);
    s.t.clock.advance(10 * 60 - 1);
    const res = await confirmWith(s, owner.accessToken, totpCode(secret, s.t.clock.now()));
    expect(res.data?.confirmTotp.__typename, JSON.stringify(res)).toBe('RecoveryCodes');
  });

  it('answers a confirmation with nothing enrolled, audited as not_enrolled', async () => {
    const user = await registerUser(s);
    const res = await confirmWith(s, user.accessToken, '123456');
    expect(res.data?.confirmTotp.__typename, JSON.stringify(res)).toBe('InvalidSecondFactorError');
    expect(await confirmRefusals(s, user.userId)).toEqual(['not_enrolled']);
  });
});

describe.runIf(onPostgres)('confirmTotp guesses racing on PostgreSQL', () => {
  const SUBMISSIONS = 12;

  it('checks at most 5 of 12 simultaneous wrong codes, and then refuses the right one', async () => {
    const { owner, thief, secret } = await ownerWithPendingSecret(s);
    const now = s.t.clock.now();
    const answers = await Promise.all(
      Array.from({ length: SUBMISSIONS }, (_, i) => confirmWith(s, thief.accessToken, wrongCode(secret, now, i * 1000))),
    );
    expect(answers.map((res) => res.data?.confirmTotp.__typename ?? JSON.stringify(res.errors))).toEqual(
      Array(SUBMISSIONS).fill('InvalidSecondFactorError'),
    );
    const refusals = await confirmRefusals(s, owner.userId);
    expect(refusals).toHaveLength(SUBMISSIONS);
    expect(refusals.filter((r) => r === 'wrong_code').length).toBeLessThanOrEqual(5);
    const hit = await confirmWith(s, thief.accessToken, totpCode(secret, s.t.clock.now()));
    expect(hit.data?.confirmTotp.__typename, JSON.stringify(hit)).toBe('InvalidSecondFactorError');
    expect((await s.gql(MY_FACTORS, {}, { token: owner.accessToken })).data?.me.secondFactors).toEqual([]);
    expect(await s.t.database.db.select().from(recoveryCodes).where(eq(recoveryCodes.userId, owner.userId))).toEqual([]);
  });
});
