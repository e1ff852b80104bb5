import { count } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DatabaseHandle } from '../../src/db/client.js';
import { authEvents, oneTimeTokens, refreshTokens, revokedTokens, sessions, userRoles, users } from '../../src/db/schema.js';
import { CHANGE_PASSWORD, NEW_PASSWORD, REQUEST_PASSWORD_RESET, RESET_PASSWORD, REVOKE_SESSION, REVOKE_USER_SESSIONS, VERIFY_EMAIL, sessionIdOf } from '../support/account.js';
import { createTestApp, type GraphQLResponse, type TestApp } from '../support/app.js';
import { GRANT_ROLE, registerAdmin, REVOKE_ROLE, SET_USER_ACTIVE, USER_BY_ID, USERS } from '../support/authz.js';
import { openTestDatabase } from '../support/database.js';
import { GOOD_PASSWORD, LOGIN, LOGOUT, REFRESH, REGISTER, registerUser, uniqueEmail, type Session } from '../support/operations.js';

// PostgreSQL cannot store a NUL in text (the query fails: 22021), and the drivers turn an
// unpaired UTF-16 surrogate into U+FFFD, so what would be stored or hashed is not what was sent.
const NUL = '\u0000';
const LONE_SURROGATE = '\ud800';

const AUDIT_EVENTS = `query Audit($after: String, $userId: ID, $type: String) {
  auditEvents(after: $after, userId: $userId, type: $type) { edges { node { id } } }
}`;

let database: DatabaseHandle;
let t: TestApp;
let admin: Session;
let member: Session;
beforeAll(async () => {
  database = await openTestDatabase();
  t = await createTestApp({ LOG_LEVEL: 'info' }, database);
  admin = await registerAdmin(t);
  member = await registerUser(t);
});
afterAll(async () => {
  await database?.close();
});
afterEach(() => {
  vi.restoreAllMocks();
});

interface Case {
  /** The argument as a client names it in InputError.field / extensions.field. */
  field: string;
  operation: string;
  /** The root field the operation runs. */
  root: string;
  variables: (bad: string) => Record<string, unknown>;
  /** Who sends it: the test makes sure the value would otherwise reach the resolver. */
  as?: () => Session;
  /**
   * Whether the field's result union has an InputError member (else: a GraphQL error), or the
   * union member a field taking only an opaque token answers instead (its own "invalid token").
   */
  union: boolean | string;
}

const asAdmin = () => admin;
const asMember = () => member;

const CASES: Case[] = [
  { root: 'register', field: 'email', union: true, operation: REGISTER, variables: (bad) => ({ input: { email: `new${bad}@example.com`, password: GOOD_PASSWORD } }) },
  { root: 'register', field: 'password', union: true, operation: REGISTER, variables: (bad) => ({ input: { email: uniqueEmail(), password: `${GOOD_PASSWORD}${bad}` } }) },
  { root: 'register', field: 'name', union: true, operation: REGISTER, variables: (bad) => ({ input: { email: uniqueEmail(), password: GOOD_PASSWORD, name: `Ann${bad}` } }) },
  { root: 'login', field: 'email', union: true, operation: LOGIN, variables: (bad) => ({ input: { email: `${member.email}${bad}`, password: GOOD_PASSWORD } }) },
  { root: 'login', field: 'password', union: true, operation: LOGIN, variables: (bad) => ({ input: { email: member.email, password: `${GOOD_PASSWORD}${bad}` } }) },
  { root: 'refresh', field: 'refreshToken', union: 'InvalidRefreshTokenError', operation: REFRESH, variables: (bad) => ({ token: `${member.refreshToken}${bad}` }) },
  { root: 'logout', field: 'refreshToken', union: false, operation: LOGOUT, variables: (bad) => ({ token: `${member.refreshToken}${bad}` }) },
  { root: 'changePassword', field: 'currentPassword', union: true, as: asMember, operation: CHANGE_PASSWORD, variables: (bad) => ({ current: `${GOOD_PASSWORD}${bad}`, next: NEW_PASSWORD }) },
  { root: 'changePassword', field: 'newPassword', union: true, as: asMember, operation: CHANGE_PASSWORD, variables: (bad) => ({ current: GOOD_PASSWORD, next: `${NEW_PASSWORD}${bad}` }) },
  { root: 'verifyEmail', field: 'token', union: 'InvalidTokenError', operation: VERIFY_EMAIL, variables: (bad) => ({ token: `a.b${bad}` }) },
  { root: 'requestPasswordReset', field: 'email', union: false, operation: REQUEST_PASSWORD_RESET, variables: (bad) => ({ email: `${member.email}${bad}` }) },
  { root: 'resetPassword', field: 'token', union: true, operation: RESET_PASSWORD, variables: (bad) => ({ token: `a.b${bad}`, password: NEW_PASSWORD }) },
  { root: 'resetPassword', field: 'newPassword', union: true, operation: RESET_PASSWORD, variables: (bad) => ({ token: 'a.b', password: `${NEW_PASSWORD}${bad}` }) },
  { root: 'grantRole', field: 'userId', union: false, as: asAdmin, operation: GRANT_ROLE, variables: (bad) => ({ userId: `${member.userId}${bad}`, role: 'admin' }) },
  { root: 'grantRole', field: 'role', union: false, as: asAdmin, operation: GRANT_ROLE, variables: (bad) => ({ userId: member.userId, role: `admin${bad}` }) },
  { root: 'revokeRole', field: 'userId', union: false, as: asAdmin, operation: REVOKE_ROLE, variables: (bad) => ({ userId: `${member.userId}${bad}`, role: 'user' }) },
  { root: 'revokeRole', field: 'role', union: false, as: asAdmin, operation: REVOKE_ROLE, variables: (bad) => ({ userId: member.userId, role: `user${bad}` }) },
  { root: 'setUserActive', field: 'userId', union: false, as: asAdmin, operation: SET_USER_ACTIVE, variables: (bad) => ({ userId: `${member.userId}${bad}`, active: false }) },
  { root: 'revokeSession', field: 'id', union: false, as: asAdmin, operation: REVOKE_SESSION, variables: (bad) => ({ id: `${sessionIdOf(member.accessToken)}${bad}` }) },
  { root: 'revokeUserSessions', field: 'userId', union: false, as: asAdmin, operation: REVOKE_USER_SESSIONS, variables: (bad) => ({ userId: `${member.userId}${bad}` }) },
  { root: 'user', field: 'id', union: false, as: asAdmin, operation: USER_BY_ID, variables: (bad) => ({ id: `${member.userId}${bad}` }) },
  { root: 'users', field: 'after', union: false, as: asAdmin, operation: USERS, variables: (bad) => ({ after: `cursor${bad}` }) },
  { root: 'users', field: 'search', union: false, as: asAdmin, operation: USERS, variables: (bad) => ({ search: `ann${bad}` }) },
  { root: 'auditEvents', field: 'after', union: false, as: asAdmin, operation: AUDIT_EVENTS, variables: (bad) => ({ after: `cursor${bad}` }) },
  { root: 'auditEvents', field: 'userId', union: false, as: asAdmin, operation: AUDIT_EVENTS, variables: (bad) => ({ userId: `${member.userId}${bad}` }) },
  { root: 'auditEvents', field: 'type', union: false, as: asAdmin, operation: AUDIT_EVENTS, variables: (bad) => ({ type: `login_success${bad}` }) },
];

/** Rows in the tables a sign-in, an admin change or a mail request would write. */
async function rowCounts() {
  const { db } = t.database;
  const tables = { users, sessions, refreshTokens, revokedTokens, userRoles, oneTimeTokens, authEvents };
  const counted = await Promise.all(
    Object.entries(tables).map(async ([name, table]) => [name, Number((await db.select({ n: count() }).from(table))[0]!.n)] as const),
  );
  return Object.fromEntries(counted);
}

/** Asserts the answer is an INVALID_INPUT on `field`: the union member, or a GraphQL error on the field. */
function expectInvalidInput(res: GraphQLResponse, c: Case) {
  const label = `${c.root}(${c.field}): ${JSON.stringify(res).slice(0, 300)}`;
  // Soft: one run reports every field that answers otherwise.
  if (typeof c.union === 'string') {
    expect.soft(res.errors, label).toBeUndefined();
    expect.soft(res.data?.[c.root]?.__typename, label).toBe(c.union);
  } else if (c.union) {
    expect.soft(res.errors, label).toBeUndefined();
    expect.soft(res.data?.[c.root], label).toMatchObject({ __typename: 'InputError', code: 'INVALID_INPUT', field: c.field });
  } else {
    expect.soft(res.errors, label).toHaveLength(1);
    expect.soft(res.errors?.[0], label).toMatchObject({ path: [c.root], extensions: { code: 'INVALID_INPUT', field: c.field } });
  }
}

/** Runs every case with `bad` in its argument; asserts typed refusals, no write and no error logged. */
async function expectAllRefused(bad: string) {
  const before = await rowCounts();
  const logged = vi.spyOn(t.services.logger, 'error');
  for (const c of CASES) {
    const res = await t.gql(c.operation, c.variables(bad), { token: c.as?.().accessToken });
    expectInvalidInput(res, c);
  }
  await t.services.tasks.idle();
  expect(logged).not.toHaveBeenCalled();
  expect(await rowCounts()).toEqual(before);
}

describe('text PostgreSQL cannot store', () => {
  it('answers INVALID_INPUT naming the argument, for a NUL in any string argument of any field, and writes nothing', async () => {
    await expectAllRefused(`x${NUL}y`);
  });

  it('answers INVALID_INPUT for an unpaired surrogate the same way (it would be stored, or hashed, as U+FFFD)', async () => {
    await expectAllRefused(`x${LONE_SURROGATE}y`);
    // A surrogate pair (a character outside the BMP) is text like any other, stored as sent.
    const name = 'Ann \u{1F98A}';
    const session = await registerUser(t, { name });
    expect((await t.gql(`query { me { name } }`, {}, { token: session.accessToken })).data?.me.name).toBe(name);
  });

  it('refuses a NUL written in the operation itself, not only in variables', async () => {
    const res = await t.gql(`mutation { register(input: { email: "${uniqueEmail()}", password: "${GOOD_PASSWORD}", name: "Ann\\u0000" }) {
      __typename ... on InputError { code field }
    } }`);
    expect(res).toMatchObject({ data: { register: { __typename: 'InputError', code: 'INVALID_INPUT', field: 'name' } } });
  });
});
