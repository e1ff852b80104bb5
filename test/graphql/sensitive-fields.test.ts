import argon2 from 'argon2';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { schema } from '../../src/graphql/schema.js';
import { sensitiveFieldsOf } from '../../src/graphql/single-sensitive-field.js';
import type { DatabaseHandle } from '../../src/db/client.js';
import { eventsFromIp, expectRejectedBeforeExecution, rawFetch, storedHits, uniqueIp } from '../support/abuse.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { openTestDatabase } from '../support/database.js';
import { GOOD_PASSWORD, registerUser } from '../support/operations.js';

let database: DatabaseHandle;
let plain: TestApp;
let t: TestApp;
beforeAll(async () => {
  database = await openTestDatabase();
  plain = await createTestApp({}, database);
  t = await createTestApp({ RATE_LIMITS: 'on' }, database);
});
afterAll(async () => {
  await database?.close();
});
afterEach(() => {
  vi.restoreAllMocks();
});

const ONE_SENSITIVE = /at most one of (\w+, )+\w+; this one has \d+/;

/** A call of each sensitive field, with arguments of the right types. */
const CALLS: Record<string, string> = {
  login: 'login(input: { email: $email, password: $password }) { __typename }',
  register: 'register(input: { email: $email, password: $password }) { __typename }',
  refresh: 'refresh(refreshToken: $password) { __typename }',
  requestPasswordReset: 'requestPasswordReset(email: $email)',
  requestEmailVerification: 'requestEmailVerification',
  changePassword: 'changePassword(currentPassword: $password, newPassword: $password) { __typename }',
  resetPassword: 'resetPassword(token: $password, newPassword: $password) { __typename }',
  verifyEmail: 'verifyEmail(token: $password) { __typename }',
  reauthenticate: 'reauthenticate(password: $password) { __typename }',
  completeSignIn: 'completeSignIn(challenge: $password, code: $password) { __typename }',
  enrollTotp: 'enrollTotp { secret }',
  confirmTotp: 'confirmTotp(code: $password) { __typename }',
  disableTotp: 'disableTotp',
  regenerateRecoveryCodes: 'regenerateRecoveryCodes { codes }',
  startSocialSignIn: 'startSocialSignIn(provider: $email, redirectUri: $password) { __typename }',
  completeSocialSignIn: 'completeSocialSignIn(provider: $email, code: $password, state: $password) { __typename }',
  startIdentityLink: 'startIdentityLink(provider: $email, redirectUri: $password) { __typename }',
  completeIdentityLink: 'completeIdentityLink(provider: $email, code: $password, state: $password) { __typename }',
  startPasskeyRegistration: 'startPasskeyRegistration',
  finishPasskeyRegistration: 'finishPasskeyRegistration(response: { id: $password }) { __typename }',
  removePasskey: 'removePasskey(id: "00000000-0000-0000-0000-000000000000")',
  startPasskeySignIn: 'startPasskeySignIn(email: $email)',
  startPasskeyReauthentication: 'startPasskeyReauthentication',
  finishPasskeySignIn: 'finishPasskeySignIn(response: { id: $password }) { __typename }',
};
const VARS = '($email: String!, $password: String!)';
const SENSITIVE_FIELDS = Object.keys(CALLS);

it('counts exactly these fields as sensitive: the ones declaring rate limits', () => {
  expect(sensitiveFieldsOf(schema).sort()).toEqual([...SENSITIVE_FIELDS].sort());
});

/**
 * Sends an operation that must be refused, with the right password of a real user, and checks
 * nothing ran: no password check, no attempt counted against the address, no audit event.
 */
async function expectRefusedUnexecuted(query: string) {
  const { email } = await registerUser(plain);
  const ip = uniqueIp();
  const verify = vi.spyOn(argon2, 'verify');
  const hash = vi.spyOn(argon2, 'hash');
  verify.mockClear();
  hash.mockClear();
  const res = await t.gql(query, { email, password: GOOD_PASSWORD }, { ip });
  expectRejectedBeforeExecution(res, ONE_SENSITIVE);
  expect(verify).not.toHaveBeenCalled();
  expect(hash).not.toHaveBeenCalled();
  expect(await storedHits(t, 'LOGIN_IP', ip)).toBe(0);
  expect(await storedHits(t, 'REGISTER_IP', ip)).toBe(0);
  expect(await storedHits(t, 'REFRESH_IP', ip)).toBe(0);
  expect(await eventsFromIp(t, ip)).toEqual([]);
  return res;
}

describe('at most one sensitive field per operation', () => {
  it('refuses two aliased logins in one operation in validation: errors, no data, no attempt counted, no audit row', async () => {
    const res = await expectRefusedUnexecuted(`mutation Two${VARS} {
      first: login(input: { email: $email, password: $password }) { __typename }
      second: login(input: { email: $email, password: $password }) { __typename }
    }`);
    expect(res.errors).toHaveLength(1);
    expect(res.errors![0]!.message).toContain('this one has 2 (first, second)');
    expect(res.errors![0]!.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('refuses a hundred aliased logins in one operation', async () => {
    const fields = Array.from(
      { length: 100 },
      (_, i) => `a${i}: login(input: { email: $email, password: $password }) { __typename }`,
    ).join('\n');
    // The alias limit of graphql-armor may answer first; either way nothing runs.
    const { email } = await registerUser(plain);
    const ip = uniqueIp();
    const verify = vi.spyOn(argon2, 'verify');
    const res = await t.gql(`mutation Many${VARS} { ${fields} }`, { email, password: GOOD_PASSWORD }, { ip });
    expect(res.errors?.length).toBeGreaterThanOrEqual(1);
    expect(res.data).toBeUndefined();
    expect(verify).not.toHaveBeenCalled();
    expect(await storedHits(t, 'LOGIN_IP', ip)).toBe(0);
  });

  it('refuses login and register mixed in one operation', async () => {
    await expectRefusedUnexecuted(`mutation Mixed${VARS} { ${CALLS.login} ${CALLS.register} }`);
  });

  it('refuses login and refresh mixed in one operation', async () => {
    await expectRefusedUnexecuted(`mutation Mixed${VARS} { ${CALLS.login} ${CALLS.refresh} }`);
  });

  it('refuses a second login hidden in a fragment spread on Mutation', async () => {
    await expectRefusedUnexecuted(`
      mutation Hidden${VARS} { login(input: { email: $email, password: $password }) { __typename } ...More }
      fragment More on Mutation { other: login(input: { email: $email, password: $password }) { __typename } }
    `);
  });

  it('refuses a second login hidden in an inline fragment, with or without a type condition', async () => {
    await expectRefusedUnexecuted(`mutation Inline${VARS} {
      ${CALLS.login}
      ... on Mutation { b: login(input: { email: $email, password: $password }) { __typename } }
    }`);
    await expectRefusedUnexecuted(`mutation Inline${VARS} {
      ${CALLS.login}
      ... @include(if: true) { b: login(input: { email: $email, password: $password }) { __typename } }
    }`);
  });

  it('refuses sensitive fields spread over nested fragments', async () => {
    await expectRefusedUnexecuted(`
      mutation Nested${VARS} { ...Outer }
      fragment Outer on Mutation { a: login(input: { email: $email, password: $password }) { __typename } ...Inner }
      fragment Inner on Mutation { ... on Mutation { b: register(input: { email: $email, password: $password }) { __typename } } }
    `);
  });

  it('refuses two of a sensitive field even when one is under @skip(if: true)', async () => {
    // Validation cannot know variables' effect in general; refusing is the safe answer.
    await expectRefusedUnexecuted(`mutation Skip${VARS} {
      a: login(input: { email: $email, password: $password }) { __typename }
      b: login(input: { email: $email, password: $password }) @skip(if: true) { __typename }
    }`);
  });

  it.each(SENSITIVE_FIELDS.map((field) => [field]))('refuses two aliased %s fields in one operation', async (field) => {
    const call = CALLS[field];
    await expectRefusedUnexecuted(`mutation Two${VARS} { a: ${call} b: ${call} }`);
  });

  it('refuses every pair of different sensitive fields', async () => {
    const { email } = await registerUser(plain);
    for (const [i, first] of SENSITIVE_FIELDS.entries()) {
      for (const second of SENSITIVE_FIELDS.slice(i + 1)) {
        const res = await t.gql(`mutation Pair${VARS} { ${CALLS[first]} ${CALLS[second]} }`, { email, password: GOOD_PASSWORD });
        expectRejectedBeforeExecution(res, ONE_SENSITIVE);
      }
    }
  });

  it('runs an operation with one login (and other, non-sensitive fields) normally', async () => {
    const { email } = await registerUser(plain);
    const ip = uniqueIp();
    const res = await t.gql(
      `mutation One${VARS} { login(input: { email: $email, password: $password }) { __typename } __typename }`,
      { email, password: GOOD_PASSWORD },
      { ip },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ login: { __typename: 'AuthPayload' }, __typename: 'Mutation' });
    expect(await storedHits(t, 'LOGIN_IP', ip)).toBe(1);
    expect((await eventsFromIp(t, ip)).map((e) => e.type)).toEqual(['login_success']);
  });

  it('runs one login spread twice through the same fragment once', async () => {
    const { email } = await registerUser(plain);
    const ip = uniqueIp();
    const res = await t.gql(
      `mutation Twice${VARS} { ...L ...L }
       fragment L on Mutation { login(input: { email: $email, password: $password }) { __typename } }`,
      { email, password: GOOD_PASSWORD },
      { ip },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ login: { __typename: 'AuthPayload' } });
    expect(await storedHits(t, 'LOGIN_IP', ip)).toBe(1);
  });

  it('allows a document of several operations with one login each, and runs only the chosen one', async () => {
    const { email } = await registerUser(plain);
    const ip = uniqueIp();
    const res = await t.gql(
      `mutation A${VARS} { login(input: { email: $email, password: $password }) { __typename } }
       mutation B${VARS} { login(input: { email: $email, password: $password }) { __typename } }`,
      { email, password: GOOD_PASSWORD },
      { ip },
    );
    // Without operationName a multi-operation document is refused by GraphQL itself.
    expect(res.data ?? null).toBeNull();
    expect(res.errors?.length).toBe(1);
    expect(await storedHits(t, 'LOGIN_IP', ip)).toBe(0);
    const named = await t.app.fetch(
      'http://authgraph.test/graphql',
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          query: `mutation A${VARS} { login(input: { email: $email, password: $password }) { __typename } }
                  mutation B${VARS} { login(input: { email: $email, password: $password }) { __typename } }`,
          variables: { email, password: GOOD_PASSWORD },
          operationName: 'B',
        }),
      },
      { req: { socket: { remoteAddress: ip } } },
    );
    expect(await named.json()).toEqual({ data: { login: { __typename: 'AuthPayload' } } });
    expect(await storedHits(t, 'LOGIN_IP', ip)).toBe(1);
  });
});

describe('HTTP batching', () => {
  it('refuses a JSON array of operations (400) and runs none of them', async () => {
    const { email } = await registerUser(plain);
    const ip = uniqueIp();
    const verify = vi.spyOn(argon2, 'verify');
    const one = { query: `mutation L${VARS} { ${CALLS.login} }`, variables: { email, password: GOOD_PASSWORD } };
    const body = JSON.stringify([one, one, one]);
    const res = await rawFetch(t, '/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body }, ip);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toEqual({
      errors: [{ message: 'Batching is not supported.', extensions: { code: 'BAD_REQUEST' } }],
    });
    expect(verify).not.toHaveBeenCalled();
    expect(await storedHits(t, 'LOGIN_IP', ip)).toBe(0);
    expect(await eventsFromIp(t, ip)).toEqual([]);
  });

  it('refuses a batch of one as well', async () => {
    const body = JSON.stringify([{ query: '{ __typename }' }]);
    const res = await rawFetch(t, '/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(res.status).toBe(400);
    expect(res.text).toContain('Batching is not supported.');
  });
});
