/**
 * Step-up per field: `recentAuth` (the session was authenticated or re-authenticated within
 * REAUTH_MAX_AGE) refuses a stale session with REAUTHENTICATION_REQUIRED until `reauthenticate`
 * hands out an access token with a new auth_time, over a real port with a frozen clock.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { epochSeconds } from '../../src/time.js';
import { NEW_PASSWORD } from '../support/account.js';
import { inspect } from '../support/forge.js';
import { GOOD_PASSWORD, LOGIN, REFRESH_BRIEF, registerUser } from '../support/operations.js';
import { serveTestApp, type ServedApp } from '../support/served.js';
import { schema } from '../../src/graphql/schema.js';
import {
  CHANGE_PASSWORD_BRIEF,
  COMPLETE_SIGN_IN,
  DISABLE_TOTP,
  enableTotp,
  ENROLL_TOTP,
  eventsOf,
  passwordStep,
  REAUTHENTICATE,
  refusalCode,
  REGENERATE_RECOVERY_CODES,
  CONFIRM_TOTP,
  MY_FACTORS,
  totpCode,
  registerVerifiedUser,
} from './support.js';

let s: ServedApp;
let short: ServedApp; // REAUTH_MAX_AGE=60
let locking: ServedApp; // RATE_LIMITS=on: the lockout counts
beforeAll(async () => {
  s = await serveTestApp();
  short = await serveTestApp({ REAUTH_MAX_AGE: '60' }, s.t.database);
  // Per-IP limits out of the way: every request of these tests comes from 127.0.0.1.
  locking = await serveTestApp({ RATE_LIMITS: 'on', RATE_LIMIT_LOGIN_IP: '1000/60', RATE_LIMIT_SECOND_FACTOR_IP: '1000/60' }, s.t.database);
});
afterAll(async () => {
  await locking?.close();
  await short?.close();
  await s?.close();
});

const changePassword = (app: ServedApp, token: string) =>
  app.gql(CHANGE_PASSWORD_BRIEF, { current: GOOD_PASSWORD, next: NEW_PASSWORD }, { token });

describe('recentAuth on changePassword', () => {
  it('lets a session signed in 300 s ago change its password', async () => {
    const user = await registerUser(s);
    s.t.clock.advance(300);
    const res = await changePassword(s, user.accessToken);
    expect(res.data?.changePassword?.__typename, JSON.stringify(res)).toBe('AuthPayload');
  });

  it('refuses a session signed in 301 s ago with REAUTHENTICATION_REQUIRED, changing nothing', async () => {
    const user = await registerUser(s);
    s.t.clock.advance(301);
    const res = await changePassword(s, user.accessToken);
    expect(refusalCode(res)).toBe('REAUTHENTICATION_REQUIRED');
    expect(res.data).toBeNull();
    // The password is unchanged: the old one still signs in.
    const login = await s.gql(LOGIN, { input: { email: user.email, password: GOOD_PASSWORD } });
    expect(login.data?.login.__typename).toBe('AuthPayload');
  });

  it('still refuses a stale session after a refresh: refreshing is not authenticating', async () => {
    const user = await registerUser(s);
    s.t.clock.advance(400);
    const refreshed = await s.gql(REFRESH_BRIEF, { token: user.refreshToken });
    const res = await changePassword(s, refreshed.data!.refresh.accessToken);
    expect(refusalCode(res)).toBe('REAUTHENTICATION_REQUIRED');
  });

  it('follows REAUTH_MAX_AGE: 61 s is stale when it is 60', async () => {
    const user = await registerUser(short);
    short.t.clock.advance(61);
    expect(refusalCode(await changePassword(short, user.accessToken))).toBe('REAUTHENTICATION_REQUIRED');
  });

  it('answers UNAUTHENTICATED, not REAUTHENTICATION_REQUIRED, without a token', async () => {
    expect(refusalCode(await s.gql(CHANGE_PASSWORD_BRIEF, { current: GOOD_PASSWORD, next: NEW_PASSWORD }))).toBe('UNAUTHENTICATED');
  });
});

describe('reauthenticate', () => {
  it('with the password hands out an access token with auth_time now, which passes recentAuth', async () => {
    const user = await registerUser(s);
    s.t.clock.advance(600);
    const res = await s.gql(REAUTHENTICATE, { password: GOOD_PASSWORD }, { token: user.accessToken });
    const answer = res.data?.reauthenticate;
    expect(answer?.__typename, JSON.stringify(res)).toBe('Reauthentication');
    expect(answer.amr).toEqual(['pwd']);
    expect(new Date(answer.authTime).getTime()).toBe(s.t.clock.now().getTime());
    const { claims } = inspect(answer.accessToken);
    expect(claims.auth_time).toBe(epochSeconds(s.t.clock.now()));
    expect(claims.sid).toBe(inspect(user.accessToken).claims.sid);
    expect((await changePassword(s, answer.accessToken)).data?.changePassword?.__typename).toBe('AuthPayload');
  });

  it("moves the session's auth_time: a refresh afterwards carries it", async () => {
    const user = await registerUser(s);
    s.t.clock.advance(600);
    await s.gql(REAUTHENTICATE, { password: GOOD_PASSWORD }, { token: user.accessToken });
    const reauthenticatedAt = epochSeconds(s.t.clock.now());
    s.t.clock.advance(10);
    const refreshed = await s.gql(REFRESH_BRIEF, { token: user.refreshToken });
    expect(inspect(refreshed.data!.refresh.accessToken).claims.auth_time).toBe(reauthenticatedAt);
  });

  it('refuses a wrong password with InvalidCredentialsError and leaves the session stale', async () => {
    const user = await registerUser(s);
    s.t.clock.advance(600);
    const res = await s.gql(REAUTHENTICATE, { password: 'not-the-password-1' }, { token: user.accessToken });
    expect(res.data?.reauthenticate).toMatchObject({ __typename: 'InvalidCredentialsError', code: 'INVALID_CREDENTIALS' });
    expect(refusalCode(await changePassword(s, user.accessToken))).toBe('REAUTHENTICATION_REQUIRED');
  });

  it('counts wrong passwords toward the account lockout shared with login', async () => {
    const user = await registerUser(locking);
    for (let i = 0; i < 5; i++) {
      const res = await locking.gql(REAUTHENTICATE, { password: `wrong-password-${i}` }, { token: user.accessToken });
      expect(res.data?.reauthenticate.__typename, JSON.stringify(res)).toBe('InvalidCredentialsError');
    }
    const login = await locking.gql(LOGIN, { input: { email: user.email, password: GOOD_PASSWORD } });
    expect(login.data?.login.__typename, JSON.stringify(login)).toBe('RateLimitedError');
    const again = await locking.gql(REAUTHENTICATE, { password: GOOD_PASSWORD }, { token: user.accessToken });
    expect(again.data?.reauthenticate.__typename).toBe('RateLimitedError');
  });

  /** A user with TOTP, the clock past the confirmation code's steps; reauthenticate(code) of their first session. */
  async function withTotp(app: ServedApp) {
    const user = await registerUser(app);
    const { secret, codes } = await enableTotp(app, user.accessToken);
    app.t.clock.advance(90);
    const reauth = async (code: string) => (await app.gql(REAUTHENTICATE, { code }, { token: user.accessToken })).data?.reauthenticate.__typename;
    return { ...user, secret, codes, reauth, now: () => app.t.clock.now() };
  }

  it('counts wrong codes toward the account lockout shared with login, as completeSignIn does', async () => {
    const user = await withTotp(locking);
    for (let i = 0; i < 2; i++) {
      const res = await locking.gql(LOGIN, { input: { email: user.email, password: `wrong-password-${i}` } });
      expect(res.data?.login.__typename).toBe('InvalidCredentialsError');
    }
    for (let i = 0; i < 3; i++) expect(await user.reauth(`99999${i}`)).toBe('InvalidSecondFactorError');
    const login = await locking.gql(LOGIN, { input: { email: user.email, password: GOOD_PASSWORD } });
    expect(login.data?.login.__typename, JSON.stringify(login)).toBe('RateLimitedError');
    expect(await user.reauth(totpCode(user.secret, user.now()))).toBe('RateLimitedError');
  });

  it('does not clear the lockout count with a right password when the user has a second factor: only a passed factor does', async () => {
    const user = await withTotp(locking);
    for (let i = 0; i < 4; i++) expect(await user.reauth(`99999${i}`)).toBe('InvalidSecondFactorError');
    const right = await locking.gql(REAUTHENTICATE, { password: GOOD_PASSWORD }, { token: user.accessToken });
    expect(right.data?.reauthenticate.__typename, JSON.stringify(right)).toBe('Reauthentication');
    // The fifth failure still locks: the right password in between cleared nothing.
    const login = await locking.gql(LOGIN, { input: { email: user.email, password: 'wrong-password' } });
    expect(login.data?.login.__typename).toBe('InvalidCredentialsError');
    const locked = await locking.gql(LOGIN, { input: { email: user.email, password: GOOD_PASSWORD } });
    expect(locked.data?.login.__typename, JSON.stringify(locked)).toBe('RateLimitedError');
  });

  it('takes 5 wrong codes per session, also with RATE_LIMITS=off: later ones are refused unchecked, even right ones, and audited', async () => {
    const user = await withTotp(s); // RATE_LIMITS=off: no lockout
    for (let i = 0; i < 5; i++) expect(await user.reauth(`00000${i}`)).toBe('InvalidSecondFactorError');
    const right = totpCode(user.secret, user.now());
    expect(await user.reauth(right)).toBe('InvalidSecondFactorError');
    expect(await user.reauth(user.codes[0]!)).toBe('InvalidSecondFactorError');
    for (let i = 5; i < 9; i++) expect(await user.reauth(`00000${i}`)).toBe('InvalidSecondFactorError');
    // 5 codes were checked (and each audited as a failed code); the 6 later ones were refused unchecked, each audited.
    expect(await eventsOf(s, user.userId, ['second_factor_failure'])).toHaveLength(5);
    const refusals = (await eventsOf(s, user.userId, ['reauthentication'])).map((e) => e.detail as Record<string, unknown>);
    expect(refusals.filter((d) => d.failed === 'guesses_exhausted')).toHaveLength(6);
    // Refused unchecked, the right code and the recovery code were not spent: another sign-in takes them.
    const signedIn = await s.gql(COMPLETE_SIGN_IN, { challenge: await passwordStep(s, user.email, GOOD_PASSWORD), code: right });
    expect(signedIn.data?.completeSignIn.__typename, JSON.stringify(signedIn)).toBe('AuthPayload');
    const again = await s.gql(REAUTHENTICATE, { code: user.codes[0] }, { token: signedIn.data!.completeSignIn.accessToken });
    expect(again.data?.reauthenticate.__typename).toBe('Reauthentication');
  });

  it('clears the count of wrong codes when a code passes: 4 wrong, a right one, 4 wrong, a right one', async () => {
    const user = await withTotp(s);
    for (let i = 0; i < 4; i++) expect(await user.reauth(`00000${i}`)).toBe('InvalidSecondFactorError');
    expect(await user.reauth(user.codes[0]!)).toBe('Reauthentication');
    for (let i = 4; i < 8; i++) expect(await user.reauth(`00000${i}`)).toBe('InvalidSecondFactorError');
    expect(await user.reauth(user.codes[1]!)).toBe('Reauthentication');
  });

  it.each([
    ['nothing', {}],
    ['a password and a code', { password: GOOD_PASSWORD, code: '123456' }],
  ])('answers InputError for %s', async (_what, variables) => {
    const user = await registerUser(s);
    const res = await s.gql(REAUTHENTICATE, variables, { token: user.accessToken });
    expect(res.data?.reauthenticate).toMatchObject({ __typename: 'InputError', code: 'INVALID_INPUT' });
  });

  it('answers InvalidSecondFactorError for a passkey that is no assertion to its options (passkeys: test/factors/passkey-second-factor.test.ts)', async () => {
    const user = await registerUser(s);
    const res = await s.gql(REAUTHENTICATE, { passkey: { id: 'x' } }, { token: user.accessToken });
    expect(res.data?.reauthenticate).toMatchObject({ __typename: 'InvalidSecondFactorError' });
  });

  it('answers UNAUTHENTICATED without an access token', async () => {
    expect(refusalCode(await s.gql(REAUTHENTICATE, { password: GOOD_PASSWORD }))).toBe('UNAUTHENTICATED');
  });
});

/** Every field with a step-up scope, and an operation that reaches it as its owner would send it. */
const STEP_UP_FIELDS: Record<string, { scopes: string[]; operation: string; variables?: Record<string, unknown> }> = {
  'Mutation.changePassword': { scopes: ['recentAuth'], operation: CHANGE_PASSWORD_BRIEF, variables: { current: GOOD_PASSWORD, next: NEW_PASSWORD } },
  'Mutation.enrollTotp': { scopes: ['recentAuth', 'secondFactorOnceEnrolled'], operation: ENROLL_TOTP },
  'Mutation.disableTotp': { scopes: ['recentAuth', 'secondFactor'], operation: DISABLE_TOTP },
  'Mutation.regenerateRecoveryCodes': { scopes: ['recentAuth', 'secondFactor'], operation: REGENERATE_RECOVERY_CODES },
  'Mutation.startPasskeyRegistration': { scopes: ['recentAuth', 'secondFactorOnceEnrolled'], operation: 'mutation { startPasskeyRegistration }' },
  'Mutation.removePasskey': { scopes: ['recentAuth', 'secondFactor'], operation: 'mutation { removePasskey(id: "00000000-0000-0000-0000-000000000000") }' },
  'Mutation.confirmTotp': { scopes: ['secondFactorOnceEnrolled'], operation: CONFIRM_TOTP, variables: { code: '000000' } },
  'Mutation.finishPasskeyRegistration': {
    scopes: ['secondFactorOnceEnrolled'],
    operation: 'mutation { finishPasskeyRegistration(response: {}) { __typename } }',
  },
  'Mutation.unlinkIdentity': { scopes: ['recentAuth'], operation: 'mutation { unlinkIdentity(id: "00000000-0000-0000-0000-000000000000") }' },
  // Refused before its resolver looks at the provider (none is configured here).
  'Mutation.startIdentityLink': {
    scopes: ['recentAuth'],
    operation: `mutation { startIdentityLink(provider: "corp", redirectUri: "https://app.example/auth/callback") { __typename } }`,
  },
};

/** The step-up scopes a field of the running schema enforces (read from its authScopes, as scope-auth would). */
async function stepUpScopesOf(field: { extensions: Record<string, any> }): Promise<string[]> {
  const authScopes = field.extensions.pothosOptions?.authScopes;
  if (typeof authScopes !== 'function') return [];
  const fake = { services: { sessionAdmin: { ownerOf: async () => null } } };
  const scopes = await authScopes({ id: 'x' }, { id: 'x' }, fake);
  return scopes && '$all' in scopes ? Object.keys(scopes.$all).filter((k) => k !== '$any') : [];
}

describe('every field with a step-up scope', () => {
  it('is listed here with the scopes it enforces (a new one must be added, and so tested below)', async () => {
    const found: Record<string, string[]> = {};
    for (const type of Object.values(schema.getTypeMap())) {
      if (!('getFields' in type) || type.name.startsWith('__')) continue;
      for (const field of Object.values((type as any).getFields() as Record<string, any>)) {
        const scopes = await stepUpScopesOf(field);
        if (scopes.length > 0) found[`${type.name}.${field.name}`] = scopes;
      }
    }
    expect(found).toEqual(Object.fromEntries(Object.entries(STEP_UP_FIELDS).map(([name, { scopes }]) => [name, scopes])));
  });

  const RECENT_AUTH_FIELDS = Object.entries(STEP_UP_FIELDS).filter(([, field]) => field.scopes.includes('recentAuth'));

  it.each(RECENT_AUTH_FIELDS)('%s refuses a stale session with a second factor, and says so in its description', async (name, field) => {
    const [type, fieldName] = name.split('.') as [string, string];
    const description = (schema.getType(type) as any).getFields()[fieldName].description as string;
    expect(description).toMatch(/signed in .*within the last 5 minutes \(REAUTH_MAX_AGE\)\.$/);
    const user = await registerUser(s);
    const { secret } = await enableTotp(s, user.accessToken);
    // A session that passed both factors: only its age is wrong.
    const { accessToken } = await signInWithCode(user.email, secret);
    s.t.clock.advance(301);
    const res = await s.gql(field.operation, field.variables ?? {}, { token: accessToken });
    expect(refusalCode(res)).toBe('REAUTHENTICATION_REQUIRED');
  });

  const SECOND_FACTOR_FIELDS = Object.entries(STEP_UP_FIELDS).filter(([, field]) => field.scopes.includes('secondFactor'));

  it('includes taking a factor away: disableTotp, regenerateRecoveryCodes, removePasskey', () => {
    expect(SECOND_FACTOR_FIELDS.map(([name]) => name).sort()).toEqual([
      'Mutation.disableTotp',
      'Mutation.regenerateRecoveryCodes',
      'Mutation.removePasskey',
    ]);
  });

  it.each(SECOND_FACTOR_FIELDS)(
    '%s refuses a fresh session that has not passed a second factor with SECOND_FACTOR_REQUIRED, says so, and lets it through after reauthenticate with a code',
    async (name, field) => {
      const [type, fieldName] = name.split('.') as [string, string];
      const description = (schema.getType(type) as any).getFields()[fieldName].description as string;
      expect(description).toMatch(/signed in with a second factor within the last 5 minutes \(REAUTH_MAX_AGE\)\.$/);
      const user = await registerUser(s);
      // The session that enrolled the factor signed in with the password alone.
      const { secret } = await enableTotp(s, user.accessToken);
      const refused = await s.gql(field.operation, field.variables ?? {}, { token: user.accessToken });
      expect(refusalCode(refused)).toBe('SECOND_FACTOR_REQUIRED');
      expect(refused.data).toBeNull();
      expect((await s.gql(MY_FACTORS, {}, { token: user.accessToken })).data?.me.secondFactors).toEqual(['TOTP', 'RECOVERY_CODE']);
      // A code of the next step: the one that confirmed the app is spent.
      s.t.clock.advance(30);
      const proved = await s.gql(REAUTHENTICATE, { code: totpCode(secret, s.t.clock.now()) }, { token: user.accessToken });
      expect(proved.data?.reauthenticate.amr, JSON.stringify(proved)).toEqual(['pwd', 'otp']);
      const res = await s.gql(field.operation, field.variables ?? {}, { token: proved.data!.reauthenticate.accessToken });
      expect(res.errors, JSON.stringify(res)).toBeUndefined();
    },
  );
});

describe('every field that adds a factor', () => {
  const ONCE_ENROLLED_FIELDS = Object.entries(STEP_UP_FIELDS).filter(([, field]) => field.scopes.includes('secondFactorOnceEnrolled'));

  it('is enrollTotp, confirmTotp, startPasskeyRegistration or finishPasskeyRegistration', () => {
    expect(ONCE_ENROLLED_FIELDS.map(([name]) => name).sort()).toEqual([
      'Mutation.confirmTotp',
      'Mutation.enrollTotp',
      'Mutation.finishPasskeyRegistration',
      'Mutation.startPasskeyRegistration',
    ]);
  });

  it.each(ONCE_ENROLLED_FIELDS)(
    '%s lets a password-only session add the first factor, refuses it once one exists with SECOND_FACTOR_REQUIRED, and says so',
    async (name, field) => {
      const [type, fieldName] = name.split('.') as [string, string];
      const description = (schema.getType(type) as any).getFields()[fieldName].description as string;
      expect(description).toMatch(/signed in with a second factor \(once they have one\)( within the last 5 minutes \(REAUTH_MAX_AGE\))?\.$/);
      const first = await registerVerifiedUser(s);
      const allowed = await s.gql(field.operation, field.variables ?? {}, { token: first.accessToken });
      expect(allowed.errors, JSON.stringify(allowed)).toBeUndefined();
      const user = await registerUser(s);
      // The session that turned TOTP on signed in with the password alone.
      await enableTotp(s, user.accessToken);
      const refused = await s.gql(field.operation, field.variables ?? {}, { token: user.accessToken });
      expect(refusalCode(refused)).toBe('SECOND_FACTOR_REQUIRED');
      expect(refused.data).toBeNull();
    },
  );
});

/** Signs in with the password and a TOTP code of the next step (the current one may be spent). */
async function signInWithCode(email: string, secret: string): Promise<{ accessToken: string }> {
  const challenge = await passwordStep(s, email, GOOD_PASSWORD);
  s.t.clock.advance(30);
  const res = await s.gql(COMPLETE_SIGN_IN, { challenge, code: totpCode(secret, s.t.clock.now()) });
  expect(res.data?.completeSignIn.__typename, JSON.stringify(res)).toBe('AuthPayload');
  return { accessToken: res.data!.completeSignIn.accessToken };
}
