/**
 * REQUIRE_SECOND_FACTOR_FOR_ROLES=admin: an admin whose session passed no second factor gets
 * SECOND_FACTOR_REQUIRED on every field the admin role's permissions open, and nothing else
 * changes (their own data, other roles' permissions); after reauthenticate with a code, it works.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_STATS, GRANT_ROLE, createRole, registerAdmin, USER_BY_ID } from '../support/authz.js';
import { ME_ID, registerUser } from '../support/operations.js';
import { serveTestApp, type ServedApp } from '../support/served.js';
import { enableTotp, REAUTHENTICATE, refusalCode, totpCode } from './support.js';

let s: ServedApp; // REQUIRE_SECOND_FACTOR_FOR_ROLES=admin
let plain: ServedApp; // the default: no role needs a second factor
beforeAll(async () => {
  s = await serveTestApp({ REQUIRE_SECOND_FACTOR_FOR_ROLES: ' admin , ' });
  plain = await serveTestApp({}, s.t.database);
});
afterAll(async () => {
  await plain?.close();
  await s?.close();
});

describe('REQUIRE_SECOND_FACTOR_FOR_ROLES=admin', () => {
  it("refuses an admin's one-factor session on the fields admin permissions open, with SECOND_FACTOR_REQUIRED", async () => {
    const admin = await registerAdmin(s.t);
    const other = await registerUser(s);
    expect(refusalCode(await s.gql(ADMIN_STATS, {}, { token: admin.accessToken }))).toBe('SECOND_FACTOR_REQUIRED');
    expect(refusalCode(await s.gql(USER_BY_ID, { id: other.userId }, { token: admin.accessToken }))).toBe('SECOND_FACTOR_REQUIRED');
    const grant = await s.gql(GRANT_ROLE, { userId: other.userId, role: 'admin' }, { token: admin.accessToken });
    expect(refusalCode(grant)).toBe('SECOND_FACTOR_REQUIRED');
  });

  it('leaves what the admin may do as any user: their own data, me', async () => {
    const admin = await registerAdmin(s.t);
    expect((await s.gql(ME_ID, {}, { token: admin.accessToken })).data?.me.id).toBe(admin.userId);
    const own = await s.gql(USER_BY_ID, { id: admin.userId }, { token: admin.accessToken });
    expect(own.errors, JSON.stringify(own)).toBeUndefined();
  });

  it('lets permissions through that another role of the user grants', async () => {
    const admin = await registerAdmin(s.t);
    const reader = await createRole(s.t, ['users:read']);
    await s.t.services.roleAdmin.grantRole({ kind: 'operator' }, admin.userId, reader);
    await s.t.services.changes.sync();
    expect((await s.gql(ADMIN_STATS, {}, { token: admin.accessToken })).errors).toBeUndefined();
  });

  it('opens them once the session passed a second factor', async () => {
    const admin = await registerAdmin(s.t);
    const { secret } = await enableTotp(s, admin.accessToken);
    s.t.clock.advance(90);
    const stepped = await s.gql(REAUTHENTICATE, { code: totpCode(secret, s.t.clock.now()) }, { token: admin.accessToken });
    expect(stepped.data?.reauthenticate.__typename, JSON.stringify(stepped)).toBe('Reauthentication');
    const res = await s.gql(ADMIN_STATS, {}, { token: stepped.data!.reauthenticate.accessToken });
    expect(res.errors, JSON.stringify(res)).toBeUndefined();
    expect(res.data?.adminStats.totalUsers).toBeGreaterThan(0);
  });

  it('is off by default: an admin with one factor works', async () => {
    const admin = await registerAdmin(plain.t);
    expect((await plain.gql(ADMIN_STATS, {}, { token: admin.accessToken })).errors).toBeUndefined();
  });

  it('still answers FORBIDDEN to a user holding no admin permission', async () => {
    const user = await registerUser(s);
    expect(refusalCode(await s.gql(ADMIN_STATS, {}, { token: user.accessToken }))).toBe('FORBIDDEN');
  });
});
