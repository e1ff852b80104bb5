/**
 * A key given in JWT_PRIVATE_KEY: added to the stored set under its RFC 7638 thumbprint, signing
 * at once on a fresh database and after the pre-publication wait on a set that already signs; never rotated away from by time, only by the operator; and once rotated away from or
 * revoked, never brought back by a start that still has it in the environment.
 */
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, type JWK } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { Logger } from '../../src/logger.js';
import { openSigningKeys, type KeyInfo } from '../../src/tokens/signing-keys.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { OWN_DATABASE_TIMEOUT } from '../support/database.js';
import { expectUnauthenticated } from '../support/forge.js';
import { ME_ID, registerUser } from '../support/operations.js';

/**
 * Pre-publication 2 × 5 = 10 s; retention 60 + 5 = 65 s. Automatic rotation (of generated keys)
 * only after an hour: a second app's clock starts at the wall-clock time it opens, which on a
 * loaded machine can be well past the first app's, and must not find a rotation due.
 */
const TIMING = { JWKS_MAX_AGE: '5', KEY_ROTATION_INTERVAL: '3600', ACCESS_TOKEN_TTL: '60' };
const PRE_PUBLICATION_S = 10;
const RETENTION_S = 65;

const pems = {
  ES256: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  RS256: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
};

/** The public JWK of a PEM private key and its RFC 7638 thumbprint, computed apart from the server. */
async function thumbprintOf(pem: string): Promise<{ jwk: JWK; kid: string }> {
  const jwk = createPublicKey(pem).export({ format: 'jwk' }) as JWK;
  return { jwk, kid: await calculateJwkThumbprint(jwk, 'sha256') };
}

const environment = (alg: keyof typeof pems, extra: Record<string, string> = {}) => ({
  JWT_SECRET: '',
  JWT_ALGORITHM: alg,
  JWT_PRIVATE_KEY: pems[alg],
  ...TIMING,
  ...extra,
});

const apps: TestApp[] = [];
afterEach(async () => {
  // Apps sharing the first one's database close before it.
  for (const app of apps.splice(0).reverse()) await app.close();
});
async function app(env: Record<string, string>, on?: TestApp): Promise<TestApp> {
  const t = await createTestApp(env, on?.database);
  apps.push(t);
  return t;
}

/** What the key set holds, by kid. */
async function states(t: TestApp): Promise<Record<string, Pick<KeyInfo, 'state' | 'source'>>> {
  const keys = await t.services.signingKeys.manager!.list();
  return Object.fromEntries(keys.map((key) => [key.kid, { state: key.state, source: key.source }]));
}

async function publishedKeys(t: TestApp): Promise<Record<string, unknown>[]> {
  const res = await t.app.fetch('http://authgraph.test/.well-known/jwks.json', {}, { req: { socket: { remoteAddress: '127.0.0.1' } } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { keys: Record<string, unknown>[] }).keys;
}

/** The kid in the header of a fresh sign-in's access token. */
async function signingKid(t: TestApp): Promise<string> {
  return decodeProtectedHeader((await registerUser(t)).accessToken).kid!;
}

/** Opens the keys of `t`'s configuration once more on its database (another instance starting), recording warnings. */
async function startAgain(t: TestApp) {
  const warnings: string[] = [];
  const logger = { warn: (...args: unknown[]) => warnings.push(JSON.stringify(args)), error() {}, info() {}, debug() {}, trace() {}, fatal() {} };
  const keys = await openSigningKeys({
    config: loadConfig({ KEY_ENCRYPTION_KEY: t.config.keys.encryptionKey!.toString('base64'), ...environment('ES256') }),
    logger: logger as unknown as Logger,
    database: t.database,
    clock: t.clock,
    schedule: false,
  });
  await keys.close();
  return { signer: keys.ring.signer(t.clock.now())!.kid, warnings };
}

describe('JWT_PRIVATE_KEY', { timeout: OWN_DATABASE_TIMEOUT }, () => {
  it('joins a set that already signs as the next key: published at once, signing only after 2 x JWKS_MAX_AGE', async () => {
    const generated = await app({ JWT_SECRET: '', JWT_ALGORITHM: 'ES256', ...TIMING });
    const before = await signingKid(generated);
    const { kid } = await thumbprintOf(pems.ES256);
    const adopting = await app(environment('ES256'), generated);
    expect((await states(adopting))[kid]).toEqual({ state: 'next', source: 'environment' });
    expect((await publishedKeys(adopting)).map((key) => key.kid)).toContain(kid);
    expect(await signingKid(adopting)).toBe(before);
    adopting.clock.advance(PRE_PUBLICATION_S);
    expect(await signingKid(adopting)).toBe(kid);
  });


  for (const alg of ['ES256', 'RS256'] as const) {
    it(`adds a ${alg} key to the set under its RFC 7638 thumbprint, current and from the environment: tokens carry that kid and the JWKS publishes it`, async () => {
      const { jwk, kid } = await thumbprintOf(pems[alg]);
      const t = await app(environment(alg));
      expect(await states(t)).toEqual({ [kid]: { state: 'current', source: 'environment' } });

      const session = await registerUser(t);
      expect(decodeProtectedHeader(session.accessToken)).toMatchObject({ alg, kid });
      const me = await t.gql(ME_ID, {}, { token: session.accessToken });
      expect(me.data).toEqual({ me: { id: session.userId } });

      // Published with exactly its public members (nothing private), under its kid.
      expect(await publishedKeys(t)).toEqual([{ ...jwk, kid, alg, use: 'sig' }]);
    });
  }

  it('is not rotated away from by time: far past KEY_ROTATION_INTERVAL it still signs and nothing is scheduled', async () => {
    const { kid } = await thumbprintOf(pems.ES256);
    const t = await app(environment('ES256', { KEY_ROTATION_INTERVAL: '20' }));
    const manager = t.services.signingKeys.manager!;
    for (let i = 0; i < 3; i++) {
      t.clock.advance(100);
      expect(await manager.step()).toEqual([]);
    }
    expect(await states(t)).toEqual({ [kid]: { state: 'current', source: 'environment' } });
    expect(await signingKid(t)).toBe(kid);
  });

  it('is rotated away from by `rotate` after the pre-publication wait; its tokens stay valid while retired; a later start with it does not bring it back', async () => {
    const { kid } = await thumbprintOf(pems.ES256);
    const t = await app(environment('ES256'));
    const manager = t.services.signingKeys.manager!;

    const successor = await manager.rotate();
    expect(await states(t)).toEqual({
      [kid]: { state: 'current', source: 'environment' },
      [successor]: { state: 'next', source: 'generated' },
    });
    t.clock.advance(PRE_PUBLICATION_S - 1);
    await manager.step();
    // Its last token: still valid after the switch.
    const before = await registerUser(t);
    expect(decodeProtectedHeader(before.accessToken).kid).toBe(kid);

    t.clock.advance(2);
    await manager.step();
    expect(await states(t)).toEqual({
      [kid]: { state: 'retired', source: 'environment' },
      [successor]: { state: 'current', source: 'generated' },
    });
    expect(await signingKid(t)).toBe(successor);
    expect((await t.gql(ME_ID, {}, { token: before.accessToken })).data).toEqual({ me: { id: before.userId } });

    // Another instance starts with the same JWT_PRIVATE_KEY: the key stays retired, with a warning.
    const again = await startAgain(t);
    expect(again.signer).toBe(successor);
    expect(again.warnings).toEqual([expect.stringContaining('JWT_PRIVATE_KEY')]);
    expect(again.warnings[0]).toContain(kid);
    const second = await app(environment('ES256'), t);
    expect(await signingKid(second)).toBe(successor);
    expect(await states(t)).toEqual({
      [kid]: { state: 'retired', source: 'environment' },
      [successor]: { state: 'current', source: 'generated' },
    });
  });

  it('is not brought back by a start with it once it has been removed from the set after its retention', async () => {
    const { kid } = await thumbprintOf(pems.ES256);
    const t = await app(environment('ES256'));
    const manager = t.services.signingKeys.manager!;
    const successor = await manager.rotate();
    t.clock.advance(PRE_PUBLICATION_S + 1);
    await manager.step();
    t.clock.advance(RETENTION_S + 1);
    await manager.step();
    expect((await publishedKeys(t)).map((key) => key.kid)).toEqual([successor]);

    const again = await startAgain(t);
    expect(again.signer).toBe(successor);
    expect(again.warnings).toEqual([expect.stringContaining('JWT_PRIVATE_KEY')]);
    expect(await signingKid(t)).toBe(successor);
    expect((await publishedKeys(t)).map((key) => key.kid)).toEqual([successor]);
    expect((await states(t))[kid]?.state).not.toBe('current');
  });

  it('once revoked by `retire`, its tokens are refused and a start with it does not add it again', async () => {
    const { kid } = await thumbprintOf(pems.ES256);
    const t = await app(environment('ES256'));
    const manager = t.services.signingKeys.manager!;
    const before = await registerUser(t);

    expect(await manager.retire(kid)).toBe(true);
    const after = await states(t);
    expect(after[kid]).toEqual({ state: 'revoked', source: 'environment' });
    const [replacement] = Object.keys(after).filter((other) => after[other]!.state === 'current');
    expect(replacement).toBeDefined();
    expectUnauthenticated(await t.gql(ME_ID, {}, { token: before.accessToken }), 'me');

    const again = await startAgain(t);
    expect(again.signer).toBe(replacement);
    expect(again.warnings).toEqual([expect.stringContaining('JWT_PRIVATE_KEY')]);
    const second = await app(environment('ES256'), t);
    expect(await signingKid(second)).toBe(replacement);
    expect((await states(t))[kid]).toEqual({ state: 'revoked', source: 'environment' });
    expect((await publishedKeys(second)).map((key) => key.kid)).toEqual([replacement]);
  });
});
