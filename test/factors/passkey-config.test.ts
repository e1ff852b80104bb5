/**
 * The relying party of passkeys: RP_ID and RP_ORIGINS checked at start-up, derived from
 * PUBLIC_URL outside production, required in production.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { relyingPartyOf } from '../../src/credentials/webauthn.js';
import type { DatabaseHandle } from '../../src/db/client.js';
import { createTestApp } from '../support/app.js';
import { configErrorOf } from '../support/config.js';
import { openTestDatabase } from '../support/database.js';

let database: DatabaseHandle;
beforeAll(async () => {
  database = await openTestDatabase();
});
afterAll(async () => {
  await database?.close();
});

describe('RP_ID and RP_ORIGINS', () => {
  it('outside production, default to the host and the origin of PUBLIC_URL', () => {
    const config = loadConfig({ PUBLIC_URL: 'https://app.example.com/base/' });
    expect(relyingPartyOf(config, 'https://app.example.com/base/')).toEqual({
      id: 'app.example.com',
      name: 'authgraph',
      origins: ['https://app.example.com'],
    });
  });

  it('take what is configured, several origins on the RP ID and its subdomains', () => {
    const config = loadConfig({ RP_ID: 'example.com', RP_NAME: 'Example', RP_ORIGINS: 'https://example.com, https://app.example.com:8443' });
    expect(relyingPartyOf(config, 'http://127.0.0.1:4000')).toEqual({
      id: 'example.com',
      name: 'Example',
      origins: ['https://example.com', 'https://app.example.com:8443'],
    });
  });

  it('refuse an RP ID with a scheme or port, an origin with a path, and an origin off the RP ID, naming the variable', () => {
    expect(configErrorOf({ RP_ID: 'https://example.com' }).message).toMatch(/RP_ID: expected a lower-case domain name/);
    expect(configErrorOf({ RP_ID: 'example.com:443' }).message).toMatch(/RP_ID:/);
    expect(configErrorOf({ RP_ORIGINS: 'https://example.com/' }).message).toMatch(/RP_ORIGINS: "https:\/\/example.com\/" is not an origin/);
    expect(configErrorOf({ RP_ORIGINS: 'ftp://example.com' }).message).toMatch(/RP_ORIGINS:/);
    expect(configErrorOf({ RP_ID: 'example.com', RP_ORIGINS: 'https://evilexample.com' }).message).toMatch(
      /RP_ORIGINS: "https:\/\/evilexample.com" is not on RP_ID example.com/,
    );
  });

  it('are required in production: the app refuses to start, naming both', async () => {
    const production = { NODE_ENV: 'production', SMTP_URL: 'smtp://127.0.0.1:2525' };
    const refusal = await createTestApp(production, database).then(
      () => null,
      (err: unknown) => err,
    );
    expect(refusal).toBeInstanceOf(ConfigError);
    expect((refusal as Error).message).toMatch(/^RP_ID and RP_ORIGINS are required in production/);
    expect(() => relyingPartyOf(loadConfig({ ...production, RP_ID: 'example.com' }), 'https://example.com')).toThrow(/^RP_ORIGINS is required/);
    const app = await createTestApp({ ...production, RP_ID: 'example.com', RP_ORIGINS: 'https://example.com' }, database);
    expect(app.services.webauthn.relyingParty).toEqual({ id: 'example.com', name: 'authgraph', origins: ['https://example.com'] });
    await app.close();
  });
});
