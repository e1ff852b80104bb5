/**
 * Attacks on the JOSE header of an access token, against the default ES256 key set: every forgery
 * goes through GraphQL `me` and must be UNAUTHENTICATED. Where a forgery carries the real key's
 * signature, a control shows the same token without the attack is accepted, so the refusal is
 * the attack's doing.
 */
import { createHmac, createPublicKey, randomUUID, type JsonWebKey } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importPKCS8, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { signingKeys, users } from '../../src/db/schema.js';
import { JWKS_PATH } from '../../src/plugins/use-jwks.js';
import { createKeyEncryption } from '../../src/tokens/key-encryption.js';
import { createTestApp, TEST_KEY_ENCRYPTION_KEY, type TestApp } from '../support/app.js';
import { b64url, claimsOf, expectUnauthenticated, inspect } from '../support/forge.js';
import { listen, type Listening } from '../support/listen.js';
import { ME_ID, registerUser, type Session } from '../support/operations.js';

/**
 * An attacker's self-signed certificate (CN=attacker.example) and its P-256 private key: a test
 * fixture for the x5c/x5u cases, trusted by nothing.
 */
const ATTACKER_CERT = `-----BEGIN CERTIFICATE-----
MIIBjDCCATOgAwIBAgIUTE2EPrl+fWVSJrxaD4WZQZbqkL8wCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQYXR0YWNrZXIuZXhhbXBsZTAgFw0yNjEyMDIwNDAyMzlaGA8y
MTI2MTEwODA0MDIzOVowGzEZMBcGA1UEAwwQYXR0YWNrZXIuZXhhbXBsZTBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABMnMOuzfLK8vu2uLXLWAblsyaJ2rrA9k2a1l
Hz040egzZe2lUZPaJ4YJzTEZ7gc+khZkcLRtQZy1Lsweh64DnmGjUzBRMB0GA1Ud
DgQWBBTsISTalEuiPMwldrQGKGCDBKL5IjAfBgNVHSMEGDAWgBTsISTalEuiPMwl
drQGKGCDBKL5IjAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIEI4
oCQLp2vb4BY43YJXSfw0mtZ5l7jvGGC3ZTu6QIafAiAOwVaqy/0UMSB5tzhC39hk
6FVtWHOSuaiuIsLWgAnYvw==
-----END CERTIFICATE-----`;
const ATTACKER_CERT_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgCZj4WU53Ost8XdGp
5rT6H//83HbsuHmMqDAUGHd24IChRANCAATJzDrs3yyvL7tri1y1gG5bMmidq6wP
ZNmtZR89ONHoM2XtpVGT2ieGCc0xGe4HPpIWZHC0bUGctS7MHoeuA55h
-----END PRIVATE KEY-----`;
/** The certificate as x5c carries it: base64 (not base64url) DER. */
const ATTACKER_X5C = ATTACKER_CERT.replace(/-----[A-Z ]+-----|\s/g, '');

const ES256_SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const TYP = 'at+jwt';

/** Signs `<header>.<claims>` with ES256 by hand, so no library vets the header first. */
async function es256(key: CryptoKey, header: Record<string, unknown>, claims: Record<string, unknown>): Promise<string> {
  const input = `${b64url(header)}.${b64url(claims)}`;
  const signature = await crypto.subtle.sign(ES256_SIGN, key, new TextEncoder().encode(input));
  return `${input}.${Buffer.from(signature).toString('base64url')}`;
}

/** An HS256 token with `secret` as the HMAC key. */
function hs256(secret: Buffer | string, header: Record<string, unknown>, claims: Record<string, unknown>): string {
  const input = `${b64url(header)}.${b64url(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

let t: TestApp;
let victim: Session;
let claims: Record<string, unknown>;
let realKid: string;
/** The private half of the key that signs, decrypted from its row as an insider would. */
let realKey: CryptoKey;
/** The real key as the app publishes it. */
let publishedJwk: JWK;
let attacker: { privateKey: CryptoKey; jwk: JWK; kid: string };
let certKey: CryptoKey;
/** The attacker's server: jku and x5u point at it; it must never be asked anything. */
let attackerServer: Listening;
let attackerRequests: string[] = [];

beforeAll(async () => {
  t = await createTestApp({ JWT_SECRET: '' });
  victim = await registerUser(t);
  claims = claimsOf(victim.accessToken);
  realKid = inspect(victim.accessToken).header.kid!;
  expect(inspect(victim.accessToken).header).toEqual({ alg: 'ES256', typ: TYP, kid: realKid });

  const [row] = await t.database.db.select().from(signingKeys).where(eq(signingKeys.kid, realKid));
  const pem = createKeyEncryption(Buffer.from(TEST_KEY_ENCRYPTION_KEY, 'base64')).open(row!.privateKey!, realKid)!;
  realKey = await importPKCS8(pem.toString('utf8'), 'ES256');
  const res = await t.app.fetch(`http://authgraph.test${JWKS_PATH}`);
  publishedJwk = ((await res.json()) as { keys: JWK[] }).keys.find((key) => key.kid === realKid)!;

  const pair = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(pair.publicKey);
  attacker = { privateKey: pair.privateKey, jwk, kid: await calculateJwkThumbprint(jwk) };
  certKey = await importPKCS8(ATTACKER_CERT_KEY, 'ES256');

  attackerServer = await listen((req, res) => {
    attackerRequests.push(req.url ?? '');
    if (req.url === '/jwks.json') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [{ ...attacker.jwk, kid: attacker.kid, alg: 'ES256', use: 'sig' }] }));
    } else {
      res.setHeader('content-type', 'application/pem-certificate-chain');
      res.end(ATTACKER_CERT);
    }
  });
});
afterAll(async () => {
  await attackerServer?.close();
  await t?.close();
});

const header = (extra: Record<string, unknown> = {}) => ({ alg: 'ES256', typ: TYP, kid: realKid, ...extra });

async function expectRefused(token: string, what = '') {
  const res = await t.gql(ME_ID, {}, { token });
  try {
    expectUnauthenticated(res, 'me');
  } catch (err) {
    throw new Error(`${what}: ${(err as Error).message}`);
  }
}

async function expectAccepted(token: string) {
  expect(await t.gql(ME_ID, {}, { token })).toEqual({ status: 200, data: { me: { id: victim.userId } } });
}

/** Counts the statements sent to the database driver until `stop` (PGlite or postgres.js). */
function countQueries(): { count(): number; stop(): void } {
  const client = (t.database.db as unknown as { $client: Record<string, unknown> }).$client;
  const methods = t.database.kind === 'pglite' ? ['query', 'exec', 'transaction'] : ['unsafe', 'begin'];
  const spies = methods.map((method) => vi.spyOn(client as Record<string, (...args: unknown[]) => unknown>, method));
  return {
    count: () => spies.reduce((sum, spy) => sum + spy.mock.calls.length, 0),
    stop: () => spies.forEach((spy) => spy.mockRestore()),
  };
}

describe('forged JOSE headers sent to me (ES256 key set)', () => {
  it('accepts the genuine claims signed by hand with the real key and kid (control for the forgeries below)', async () => {
    await expectAccepted(await es256(realKey, header(), claims));
    await expectAccepted(victim.accessToken);
  });

  it('refuses an unknown kid, whether the real key or an attacker signed the token', async () => {
    await expectRefused(await es256(realKey, header({ kid: randomUUID() }), claims), 'real key, unknown kid');
    await expectRefused(await es256(realKey, header({ kid: undefined }), claims), 'real key, no kid');
    await expectRefused(await es256(attacker.privateKey, header({ kid: attacker.kid }), claims), "attacker's key and kid");
    await expectRefused(await es256(attacker.privateKey, header(), claims), "attacker's key, real kid");
  });

  // Each signed with the real key: only the kid is wrong.
  const hostileKids = [
    ['a path', '../../etc/passwd'],
    ['a path around the real kid', () => `${realKid}/../${realKid}`],
    ['SQL', "' or 1=1 --"],
    ['SQL after the real kid', () => `${realKid}' or '1'='1`],
    ['a NUL after the real kid', () => `${realKid}\u0000`],
    ['an object property name (__proto__)', '__proto__'],
    ['2000 characters', 'k'.repeat(2000)],
    ['an array holding the real kid (its string form is the real kid)', () => [realKid]],
    ['a number instead of a string', 7],
  ] as const;
  it.each(hostileKids)('refuses a kid with %s, signed with the real key', async (what, kid) => {
    const token = await es256(realKey, header({ kid: typeof kid === 'function' ? kid() : kid }), claims);
    await expectRefused(token, what);
  });

  it('answers an unknown or hostile kid from memory: not one database query', async () => {
    const tokens = [
      await es256(realKey, header({ kid: randomUUID() }), claims),
      await es256(attacker.privateKey, header({ kid: attacker.kid }), claims),
      ...(await Promise.all(hostileKids.map(([, kid]) => es256(realKey, header({ kid: typeof kid === 'function' ? kid() : kid }), claims)))),
    ];
    // The victim's row changes, so this instance forgets it and the control below must read it.
    await t.database.db.update(users).set({ name: `renamed ${randomUUID()}` }).where(eq(users.id, victim.userId));
    await t.services.changes.sync();
    const queries = countQueries();
    try {
      // Control: the counter sees the queries of a genuine token (the user, read again).
      await expectAccepted(victim.accessToken);
      expect(queries.count()).toBeGreaterThan(0);
      const before = queries.count();
      for (const token of tokens) await expectRefused(token);
      expect(queries.count() - before).toBe(0);
    } finally {
      queries.stop();
    }
  });

  it("ignores an embedded jwk: a token the attacker signed, with the attacker's public key in its header, is refused", async () => {
    const jwk = { ...attacker.jwk, alg: 'ES256', use: 'sig' };
    await expectRefused(await es256(attacker.privateKey, header({ jwk, kid: undefined }), claims), 'no kid');
    await expectRefused(await es256(attacker.privateKey, header({ jwk, kid: attacker.kid }), claims), "attacker's kid");
    await expectRefused(await es256(attacker.privateKey, header({ jwk: { ...jwk, kid: realKid } }), claims), 'real kid');
  });

  it('ignores x5c: a token signed with the key of a certificate in its header is refused', async () => {
    await expectRefused(await es256(certKey, header({ x5c: [ATTACKER_X5C], kid: undefined }), claims), 'no kid');
    await expectRefused(await es256(certKey, header({ x5c: [ATTACKER_X5C] }), claims), 'real kid');
  });

  it('never fetches jku or x5u: tokens pointing at an attacker URL are refused and the URL gets no request', async () => {
    attackerRequests = [];
    const jku = `${attackerServer.url}/jwks.json`;
    const x5u = `${attackerServer.url}/cert.pem`;
    await expectRefused(await es256(attacker.privateKey, header({ jku, kid: attacker.kid }), claims), 'jku, attacker kid');
    await expectRefused(await es256(attacker.privateKey, header({ jku, kid: undefined }), claims), 'jku, no kid');
    await expectRefused(await es256(attacker.privateKey, header({ jku }), claims), 'jku, real kid');
    await expectRefused(await es256(certKey, header({ x5u, kid: undefined }), claims), 'x5u, no kid');
    await expectRefused(await es256(certKey, header({ x5u }), claims), 'x5u, real kid');
    expect(attackerRequests).toEqual([]);
    // Control: the attacker's server is up and counts what reaches it.
    expect((await fetch(jku)).status).toBe(200);
    expect(attackerRequests).toEqual(['/jwks.json']);
  });

  it('judges a genuine token that carries jku, x5u, jwk and x5c by the real key alone, fetching nothing', async () => {
    attackerRequests = [];
    const token = await es256(
      realKey,
      header({
        jku: `${attackerServer.url}/jwks.json`,
        x5u: `${attackerServer.url}/cert.pem`,
        jwk: { ...attacker.jwk, kid: attacker.kid },
        x5c: [ATTACKER_X5C],
      }),
      claims,
    );
    await expectAccepted(token);
    expect(attackerRequests).toEqual([]);
  });

  const critHeaders: [string, () => Record<string, unknown>][] = [
    ['crit: ["exp"] with exp in the header', () => ({ crit: ['exp'], exp: claims.exp })],
    ['crit: ["foo"] with foo in the header', () => ({ crit: ['foo'], foo: true })],
    ['crit: ["foo"] without foo', () => ({ crit: ['foo'] })],
    ['an empty crit', () => ({ crit: [] })],
    // The one extension jose itself understands (RFC 7797): still refused, we use none.
    ['crit: ["b64"] with b64: true', () => ({ crit: ['b64'], b64: true })],
  ];
  it.each(critHeaders)('refuses a real-key token with %s, though the same token without crit is accepted', async (what, extra) => {
    const { crit: _crit, ...withoutCrit } = extra();
    await expectRefused(await es256(realKey, header(extra()), claims), what);
    await expectAccepted(await es256(realKey, header(withoutCrit), claims));
  });

  it('refuses HS256 keyed with the public key in any of its forms (algorithm confusion), with or without the real kid', async () => {
    const publicKey = createPublicKey({ key: publishedJwk as JsonWebKey, format: 'jwk' });
    const { kid: _kid, alg: _alg, use: _use, ...bareJwk } = publishedJwk;
    const secrets: [string, Buffer | string][] = [
      ['the published JWK', JSON.stringify(publishedJwk)],
      ['the bare JWK', JSON.stringify(bareJwk)],
      ['the SPKI PEM', publicKey.export({ type: 'spki', format: 'pem' }).toString()],
      ['the SPKI DER', publicKey.export({ type: 'spki', format: 'der' })],
      ['the raw EC point', Buffer.concat([Buffer.from([4]), Buffer.from(publishedJwk.x!, 'base64url'), Buffer.from(publishedJwk.y!, 'base64url')])],
    ];
    for (const [what, secret] of secrets) {
      await expectRefused(hs256(secret, { alg: 'HS256', typ: TYP, kid: realKid }, claims), `${what}, real kid`);
      await expectRefused(hs256(secret, { alg: 'HS256', typ: TYP }, claims), `${what}, no kid`);
    }
  });

  it('refuses alg none, in any spelling, with the real kid', async () => {
    const genuineSignature = victim.accessToken.split('.')[2];
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      const unsigned = `${b64url({ alg, typ: TYP, kid: realKid })}.${b64url(claims)}.`;
      await expectRefused(unsigned, alg);
      await expectRefused(`${unsigned}${genuineSignature}`, `${alg} with a genuine signature`);
    }
  });

  it('refuses a real ES256 signature under a header that claims another algorithm, with the real kid', async () => {
    for (const alg of ['RS256', 'PS256', 'ES384', 'EdDSA', 'HS256']) {
      await expectRefused(await es256(realKey, header({ alg }), claims), alg);
    }
  });
});
