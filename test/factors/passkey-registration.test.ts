/**
 * Adding and removing passkeys through GraphQL over a real port, answered by a software
 * authenticator: what verifies is stored (counter, backup flags), what does not is refused.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { passkeys } from '../../src/db/schema.js';
import { loginUser, ME_ID } from '../support/operations.js';
import { serveTestApp, type ServedApp } from '../support/served.js';
import { SoftAuthenticator, type Bend } from '../support/webauthn-authenticator.js';
import {
  addPasskey,
  FINISH_REGISTRATION,
  MY_PASSKEYS,
  ORIGIN,
  PASSKEY_ENV,
  twoFactorSession,
  REMOVE_PASSKEY,
  START_REGISTRATION,
} from './passkey-support.js';
import { eventsOf, refusalCode, registerVerifiedUser } from './support.js';

let s: ServedApp;
beforeAll(async () => {
  s = await serveTestApp(PASSKEY_ENV);
});
afterAll(async () => {
  await s?.close();
});

/** A new authenticator holding a passkey added by the session of `token`. */
async function withPasskey(token: string): Promise<SoftAuthenticator> {
  const authenticator = new SoftAuthenticator(ORIGIN);
  await addPasskey(s, token, authenticator);
  return authenticator;
}

/** Starts a registration and answers it with a bent response; the finish's answer. */
async function registerBent(token: string, bend: Bend, startWith = token) {
  const started = await s.gql(START_REGISTRATION, {}, { token: startWith });
  const response = new SoftAuthenticator(ORIGIN).create(started.data!.startPasskeyRegistration, bend);
  const res = await s.gql(FINISH_REGISTRATION, { response }, { token });
  return res.data!.finishPasskeyRegistration;
}

describe('startPasskeyRegistration', () => {
  it('answers creation options for this relying party: discoverable, user verification required, no attestation, existing passkeys excluded', async () => {
    const user = await registerVerifiedUser(s, { name: 'Ada' });
    const first = await s.gql(START_REGISTRATION, {}, { token: user.accessToken });
    const options = first.data!.startPasskeyRegistration;
    expect(options.rp).toEqual({ id: 'app.example', name: 'authgraph' });
    expect(options.user).toMatchObject({ name: user.email, displayName: 'Ada' });
    expect(options.authenticatorSelection).toMatchObject({ residentKey: 'required', userVerification: 'required' });
    expect(options.attestation).toBe('none');
    expect(options.excludeCredentials).toEqual([]);
    const authenticator = new SoftAuthenticator(ORIGIN);
    await addPasskey(s, user.accessToken, authenticator);
    const second = await s.gql(START_REGISTRATION, {}, { token: await twoFactorSession(s, authenticator) });
    expect(second.data!.startPasskeyRegistration.excludeCredentials.map((c: { id: string }) => c.id)).toEqual([authenticator.credentials[0]!.id]);
  });

  it('once the user has a second factor, needs a session that passed one (SECOND_FACTOR_REQUIRED), to start and to finish', async () => {
    const user = await registerVerifiedUser(s);
    // Started before the first passkey exists: the first needs no second factor.
    const pending = await s.gql(START_REGISTRATION, {}, { token: user.accessToken });
    const authenticator = new SoftAuthenticator(ORIGIN);
    await addPasskey(s, user.accessToken, authenticator);
    // The password-only session that added it can add no other (it might be a stolen one).
    expect(refusalCode(await s.gql(START_REGISTRATION, {}, { token: user.accessToken }))).toBe('SECOND_FACTOR_REQUIRED');
    const response = new SoftAuthenticator(ORIGIN).create(pending.data!.startPasskeyRegistration);
    expect(refusalCode(await s.gql(FINISH_REGISTRATION, { response }, { token: user.accessToken }))).toBe('SECOND_FACTOR_REQUIRED');
    expect((await s.gql(MY_PASSKEYS, {}, { token: user.accessToken })).data!.me.passkeys).toHaveLength(1);
    // A session that passed two factors adds one.
    const token = await twoFactorSession(s, authenticator);
    await addPasskey(s, token, new SoftAuthenticator(ORIGIN));
    expect((await s.gql(MY_PASSKEYS, {}, { token })).data!.me.passkeys).toHaveLength(2);
  });

  it('needs a recent sign-in (REAUTHENTICATION_REQUIRED) and a signed-in user (UNAUTHENTICATED)', async () => {
    const user = await registerVerifiedUser(s);
    s.t.clock.advance(301);
    expect(refusalCode(await s.gql(START_REGISTRATION, {}, { token: user.accessToken }))).toBe('REAUTHENTICATION_REQUIRED');
    expect(refusalCode(await s.gql(START_REGISTRATION))).toBe('UNAUTHENTICATED');
  });
});

describe('finishPasskeyRegistration', () => {
  it('stores the passkey (counter, backup flags, name), lists it on me, adds PASSKEY to secondFactors, audits it, and signs out the other sessions', async () => {
    const user = await registerVerifiedUser(s);
    const other = await loginUser(s, user.email);
    const added = await addPasskey(s, user.accessToken, new SoftAuthenticator(ORIGIN), { name: '  Laptop  ' });
    expect(added.name).toBe('Laptop');
    const me = await s.gql(MY_PASSKEYS, {}, { token: user.accessToken });
    expect(me.data!.me.secondFactors).toEqual(['PASSKEY']);
    expect(me.data!.me.passkeys).toEqual([{ id: added.id, name: 'Laptop', createdAt: s.t.clock.now().toISOString(), lastUsedAt: null }]);
    const [row] = await s.t.database.db.select().from(passkeys).where(eq(passkeys.id, added.id));
    expect(row).toMatchObject({ userId: user.userId, counter: 0, backupEligible: true, backedUp: true, transports: ['internal', 'hybrid'] });
    const events = await eventsOf(s, user.userId, ['second_factor_added']);
    expect(events.map((e) => e.detail)).toEqual([expect.objectContaining({ method: 'PASSKEY', passkeyId: added.id, revokedSessions: 1 })]);
    expect(refusalCode(await s.gql(ME_ID, {}, { token: other.accessToken }))).toBe('UNAUTHENTICATED');
    expect((await s.gql(ME_ID, {}, { token: user.accessToken })).data!.me.id).toBe(user.userId);
  });

  it.each<[string, Bend]>([
    ['another origin', { origin: 'https://evil.example' }],
    ['another RP ID', { rpId: 'evil.example' }],
    ['another challenge', { challenge: 'bm90LXRoZS1jaGFsbGVuZ2UtdGhhdC13YXMtaXNzdWVk' }],
    ['no user verification', { userVerified: false }],
  ])('refuses a response with %s (InputError on response), storing nothing', async (_what, bend) => {
    const user = await registerVerifiedUser(s);
    const answer = await registerBent(user.accessToken, bend);
    expect(answer).toMatchObject({ __typename: 'InputError', field: 'response', code: 'INVALID_INPUT' });
    expect(await s.t.database.db.select().from(passkeys).where(eq(passkeys.userId, user.userId))).toEqual([]);
  });

  it("refuses an answer to another user's options, and the challenge works once", async () => {
    const victim = await registerVerifiedUser(s);
    const attacker = await registerVerifiedUser(s);
    expect(await registerBent(attacker.accessToken, {}, victim.accessToken)).toMatchObject({ __typename: 'InputError', field: 'response' });
    const started = await s.gql(START_REGISTRATION, {}, { token: victim.accessToken });
    const authenticator = new SoftAuthenticator(ORIGIN);
    const response = authenticator.create(started.data!.startPasskeyRegistration);
    expect((await s.gql(FINISH_REGISTRATION, { response }, { token: victim.accessToken })).data!.finishPasskeyRegistration.__typename).toBe('Passkey');
    // Replayed from a session that may add passkeys (it passed two factors): the challenge is spent.
    const again = await s.gql(FINISH_REGISTRATION, { response }, { token: await twoFactorSession(s, authenticator) });
    expect(again.data!.finishPasskeyRegistration).toMatchObject({ __typename: 'InputError', field: 'response' });
  });

  it('refuses an expired challenge, and a response that is not WebAuthn at all', async () => {
    const user = await registerVerifiedUser(s);
    const started = await s.gql(START_REGISTRATION, {}, { token: user.accessToken });
    const response = new SoftAuthenticator(ORIGIN).create(started.data!.startPasskeyRegistration);
    s.t.clock.advance(301);
    const late = await s.gql(FINISH_REGISTRATION, { response }, { token: user.accessToken });
    expect(late.data!.finishPasskeyRegistration).toMatchObject({ __typename: 'InputError', field: 'response' });
    for (const junk of [{}, 'x', { response: { clientDataJSON: 'not base64 json' } }, null]) {
      const res = await s.gql(FINISH_REGISTRATION, { response: junk }, { token: user.accessToken });
      if (junk === null) expect(res.errors?.[0]?.message).toMatch(/non-null|null/);
      else expect(res.data!.finishPasskeyRegistration).toMatchObject({ __typename: 'InputError', field: 'response' });
    }
  });
});

describe('removePasskey and User.passkeys', () => {
  it('removes the passkey (audited as the last factor), false for an id not yours or not an id, needs a recent sign-in that passed a second factor; while one exists the password alone opens no session', async () => {
    const user = await registerVerifiedUser(s);
    const authenticator = new SoftAuthenticator(ORIGIN);
    const added = await addPasskey(s, user.accessToken, authenticator);
    // The session that added it signed in with the password alone.
    expect(refusalCode(await s.gql(REMOVE_PASSKEY, { id: added.id }, { token: user.accessToken }))).toBe('SECOND_FACTOR_REQUIRED');
    const token = await twoFactorSession(s, authenticator);
    const stranger = await registerVerifiedUser(s);
    const strangerToken = await twoFactorSession(s, await withPasskey(stranger.accessToken));
    expect((await s.gql(REMOVE_PASSKEY, { id: added.id }, { token: strangerToken })).data!.removePasskey).toBe(false);
    expect((await s.gql(REMOVE_PASSKEY, { id: 'not-a-uuid' }, { token })).data!.removePasskey).toBe(false);
    const other = await loginUser(s, user.email).catch(() => null);
    expect(other).toBeNull(); // a passkey is a second factor: the password alone opens no session
    s.t.clock.advance(301);
    expect(refusalCode(await s.gql(REMOVE_PASSKEY, { id: added.id }, { token }))).toBe('REAUTHENTICATION_REQUIRED');
    const fresh = await registerVerifiedUser(s);
    const freshAuthenticator = new SoftAuthenticator(ORIGIN);
    const second = await addPasskey(s, fresh.accessToken, freshAuthenticator);
    const freshToken = await twoFactorSession(s, freshAuthenticator);
    expect((await s.gql(REMOVE_PASSKEY, { id: second.id }, { token: freshToken })).data!.removePasskey).toBe(true);
    const me = await s.gql(MY_PASSKEYS, {}, { token: freshToken });
    expect(me.data!.me).toMatchObject({ secondFactors: [], passkeys: [] });
    const removed = await eventsOf(s, fresh.userId, ['second_factor_removed']);
    expect(removed.map((e) => e.detail)).toEqual([expect.objectContaining({ method: 'PASSKEY', passkeyId: second.id, lastFactor: true })]);
  });

  it("are the user's own: another user reading them is refused", async () => {
    const owner = await registerVerifiedUser(s);
    const reader = await registerVerifiedUser(s);
    const res = await s.gql(`query($id: ID!) { user(id: $id) { id passkeys { id } } }`, { id: owner.userId }, { token: reader.accessToken });
    expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});
