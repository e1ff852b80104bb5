/**
 * REQUIRE_SECOND_FACTOR_FOR_ROLES=admin: an admin whose session passed no second factor gets
 * SECOND_FACTOR_REQUIRED on every field the admin role's permissions open, and nothing else
 * changes (their own data, other roles' permissions); after reauthenticate with a code, it works.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_STATS, GRANT_ROLE, createRole, registerAdmin, USER_BY_ID } from '../support/authz.js';
import { inspect } from '../support/forge.js';
import { startOpenIdProvider, type TestOpenIdProvider } from '../support/identity-providers.js';
import { GOOD_PASSWORD, loginUser, ME_ID, registerUser } from '../support/operations.js';
import { CLIENT, link, oidcUser, signIn, socialEnv } from '../support/social-flow.js';
import { serveTestApp, type ServedApp } from '../support/served.js';
import { enableTotp, REAUTHENTICATE, refusalCode, totpCode } from './support.js';

let s: ServedApp; // REQUIRE_SECOND_FACTOR_FOR_ROLES=admin
let plain: ServedApp; // the default: no role needs a second factor
let idp: TestOpenIdProvider;
beforeAll(async () => {
  idp = await startOpenIdProvider([CLIENT]);
  s = await serveTestApp({ ...socialEnv(idp.issuer), REQUIRE_SECOND_FACTOR_FOR_ROLES: ' admin , ' });
  plain = await serveTestApp({}, s.t.database);
});
afterAll(async () => {
  await plain?.close();
  await s?.close();
  await idp?.close();
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

  it("leaves the role out of a one-factor session's access tokens (downstream services read `roles`), and names it once the session passed a second factor", async () => {
    const admin = await registerAdmin(s.t);
    const signedIn = await loginUser(s, admin.email);
    expect(inspect(signedIn.accessToken).claims.roles).toEqual(['user']);
    const { secret } = await enableTotp(s, signedIn.accessToken);
    s.t.clock.advance(90);
    const stepped = await s.gql(REAUTHENTICATE, { code: totpCode(secret, s.t.clock.now()) }, { token: signedIn.accessToken });
    expect(stepped.data?.reauthenticate.__typename, JSON.stringify(stepped)).toBe('Reauthentication');
    expect(inspect(stepped.data!.reauthenticate.accessToken).claims.roles).toEqual(['admin', 'user']);
    // Without REQUIRE_SECOND_FACTOR_FOR_ROLES, every token names it.
    const other = await registerAdmin(plain.t);
    expect(inspect((await loginUser(plain, other.email)).accessToken).claims.roles).toEqual(['admin', 'user']);
  });

  it('still answers FORBIDDEN to a user holding no admin permission', async () => {
    const user = await registerUser(s);
    expect(refusalCode(await s.gql(ADMIN_STATS, {}, { token: user.accessToken }))).toBe('FORBIDDEN');
  });
});

describe('a provider and a password', () => {
  it('are one kind of factor, not two: a federated session re-authenticated with the password still gets SECOND_FACTOR_REQUIRED', async () => {
    const admin = await registerAdmin(s.t);
    const user = oidcUser();
    expect((await link(s, { idp }, admin.accessToken, user)).__typename).toBe('Identity');
    const fed = await signIn(s, { idp }, user);
    expect(fed.__typename, JSON.stringify(fed)).toBe('AuthPayload');
    const stepped = await s.gql(REAUTHENTICATE, { password: GOOD_PASSWORD }, { token: fed.accessToken });
    const token = stepped.data!.reauthenticate.accessToken as string;
    expect(inspect(token).claims.amr).toEqual(['fed', 'pwd']);
    expect(inspect(token).claims.roles).toEqual(['user']);
    expect(refusalCode(await s.gql(ADMIN_STATS, {}, { token }))).toBe('SECOND_FACTOR_REQUIRED');
  });
});
