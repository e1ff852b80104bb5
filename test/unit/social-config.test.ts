/**
 * Social sign-in configuration (issue 15): bad SOCIAL_* values refuse start-up (loadConfig,
 * which the server runs first) with a message naming the variable; good ones are read.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { configErrorOf } from '../support/config.js';

const SECRET = 'corp-client-secret-never-in-a-message';
const CORP = {
  SOCIAL_PROVIDERS: 'corp',
  SOCIAL_CORP_CLIENT_ID: 'authgraph',
  SOCIAL_CORP_CLIENT_SECRET: SECRET,
  SOCIAL_CORP_ISSUER: 'https://idp.example.com/realms/main',
  SOCIAL_REDIRECT_URIS: 'https://app.example/auth/callback',
};
const GITHUB = {
  SOCIAL_PROVIDERS: 'github',
  SOCIAL_GITHUB_CLIENT_ID: 'gh',
  SOCIAL_GITHUB_CLIENT_SECRET: SECRET,
  SOCIAL_REDIRECT_URIS: 'https://app.example/auth/callback',
};
/** What production requires besides (so that only the social variables can be refused). */
const PRODUCTION = {
  NODE_ENV: 'production',
  KEY_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
  SMTP_URL: 'smtp://mail.example.com:587',
};

/** The problems of a refused environment, one per line, each checked to keep the client secret out. */
function refusal(env: Record<string, string>): string {
  const message = configErrorOf(env).message;
  expect(message).not.toContain(SECRET);
  return message;
}

describe('social sign-in configuration', () => {
  it('reads a generic OpenID Connect provider and GitHub, with their defaults', () => {
    const { social } = loadConfig({ ...CORP, ...GITHUB, SOCIAL_PROVIDERS: 'corp, github' });
    expect(social.providers).toEqual([
      expect.objectContaining({ id: 'corp', kind: 'oidc', name: 'corp', scopes: 'openid email profile', allowInsecureRequests: false }),
      expect.objectContaining({ id: 'github', kind: 'github', name: 'GitHub', scopes: 'read:user user:email', allowInsecureRequests: false }),
    ]);
    expect(social.redirectUris).toEqual([CORP.SOCIAL_REDIRECT_URIS]);
    expect(social.stateTtl).toBe(600);
  });

  it('accepts an http:// issuer on a loopback address outside production only', () => {
    for (const issuer of ['http://127.0.0.1:8080', 'http://localhost:8080/realm', 'http://[::1]:8080', 'http://127.3.2.1']) {
      const { social } = loadConfig({ ...CORP, SOCIAL_CORP_ISSUER: issuer });
      expect(social.providers[0], issuer).toMatchObject({ allowInsecureRequests: true });
      expect(refusal({ ...CORP, ...PRODUCTION, SOCIAL_CORP_ISSUER: issuer }), issuer).toMatch(/^ {2}SOCIAL_CORP_ISSUER: must be https:\/\//m);
    }
    expect(loadConfig({ ...CORP, ...PRODUCTION }).social.providers).toHaveLength(1);
  });

  it('refuses an http:// issuer on any other host, or what is no https URL, naming SOCIAL_<ID>_ISSUER', () => {
    for (const issuer of ['http://idp.example.com', 'http://localhost.evil.example', 'http://127.0.0.1.nip.io', 'http://10.0.0.1', 'ftp://idp.example.com', 'idp.example.com']) {
      expect(refusal({ ...CORP, SOCIAL_CORP_ISSUER: issuer }), issuer).toMatch(/^ {2}SOCIAL_CORP_ISSUER: /m);
    }
  });

  it('refuses a listed provider without configuration, naming each variable it lacks', () => {
    const message = refusal({ SOCIAL_PROVIDERS: 'corp', SOCIAL_REDIRECT_URIS: CORP.SOCIAL_REDIRECT_URIS });
    for (const name of ['SOCIAL_CORP_CLIENT_ID', 'SOCIAL_CORP_CLIENT_SECRET', 'SOCIAL_CORP_ISSUER']) expect(message).toMatch(new RegExp(`^ {2}${name}: required`, 'm'));
  });

  it('refuses a missing or blank client id or secret, naming it', () => {
    for (const [name, value] of [
      ['SOCIAL_CORP_CLIENT_ID', ''],
      ['SOCIAL_CORP_CLIENT_ID', '   '],
      ['SOCIAL_CORP_CLIENT_SECRET', ''],
    ] as const) {
      const message = refusal({ ...CORP, [name]: value });
      expect(message, `${name}=${JSON.stringify(value)}`).toMatch(new RegExp(`^ {2}${name}: required`, 'm'));
      expect(message.trim().split('\n'), name).toHaveLength(2); // the heading, and this one problem
    }
    expect(refusal({ ...GITHUB, SOCIAL_GITHUB_CLIENT_SECRET: '' })).toMatch(/^ {2}SOCIAL_GITHUB_CLIENT_SECRET: required/m);
  });

  it('refuses a provider id that is no id, or one listed twice, naming SOCIAL_PROVIDERS', () => {
    expect(refusal({ ...CORP, SOCIAL_PROVIDERS: 'corp,my-idp' })).toMatch(/^ {2}SOCIAL_PROVIDERS: "my-idp" is not a provider id/m);
    expect(refusal({ ...CORP, SOCIAL_PROVIDERS: 'corp,CORP' })).toMatch(/^ {2}SOCIAL_PROVIDERS: "corp" is listed twice/m);
  });

  it('refuses OpenID Connect scopes without openid, naming SOCIAL_<ID>_SCOPES', () => {
    expect(refusal({ ...CORP, SOCIAL_CORP_SCOPES: 'email,profile' })).toMatch(/^ {2}SOCIAL_CORP_SCOPES: must include openid/m);
  });

  it("refuses GitHub URLs that are not https (loopback http outside production aside), and an issuer for github", () => {
    expect(refusal({ ...GITHUB, SOCIAL_GITHUB_WEB_URL: 'http://ghe.example.com' })).toMatch(/^ {2}SOCIAL_GITHUB_WEB_URL: must be https/m);
    expect(refusal({ ...GITHUB, SOCIAL_GITHUB_API_URL: 'http://ghe.example.com/api/v3' })).toMatch(/^ {2}SOCIAL_GITHUB_API_URL: must be https/m);
    expect(refusal({ ...GITHUB, ...PRODUCTION, SOCIAL_GITHUB_API_URL: 'http://127.0.0.1:9000/api/v3' })).toMatch(/^ {2}SOCIAL_GITHUB_API_URL: must be https/m);
    expect(refusal({ ...GITHUB, SOCIAL_GITHUB_ISSUER: 'https://github.com' })).toMatch(/^ {2}SOCIAL_GITHUB_ISSUER: not used for github/m);
  });

  it('refuses bad redirect URIs, naming SOCIAL_REDIRECT_URIS', () => {
    for (const uri of [
      'not a url',
      'javascript:alert(1)',
      'http://app.example/auth/callback', // http, not loopback
      'https://app.example/auth/callback?next=/admin',
      'https://app.example/auth/callback#x',
      'https://APP.example/auth/callback', // not in canonical form: the exact comparison would never match
      'https://app.example', // canonical form has a slash
    ]) {
      expect(refusal({ ...CORP, SOCIAL_REDIRECT_URIS: `https://app.example/ok,${uri}` }), uri).toMatch(/^ {2}SOCIAL_REDIRECT_URIS: /m);
    }
    expect(refusal({ ...CORP, ...PRODUCTION, SOCIAL_REDIRECT_URIS: 'http://localhost:3000/cb' })).toMatch(/^ {2}SOCIAL_REDIRECT_URIS: must be https/m);
    expect(loadConfig({ ...CORP, SOCIAL_REDIRECT_URIS: 'http://localhost:3000/cb' }).social.redirectUris).toEqual(['http://localhost:3000/cb']);
  });

  it('refuses providers without SOCIAL_REDIRECT_URIS, naming it', () => {
    expect(refusal({ ...CORP, SOCIAL_REDIRECT_URIS: ' ' })).toMatch(/^ {2}SOCIAL_REDIRECT_URIS: required when SOCIAL_PROVIDERS is set/m);
  });

  it('refuses a SOCIAL_STATE_TTL that is no positive whole number of seconds, naming it', () => {
    for (const ttl of ['0', '-1', '1.5', 'ten', '600s']) expect(refusal({ ...CORP, SOCIAL_STATE_TTL: ttl }), ttl).toContain('SOCIAL_STATE_TTL');
    expect(loadConfig({ ...CORP, SOCIAL_STATE_TTL: '60' }).social.stateTtl).toBe(60);
  });

  it('names a bad social variable along with a bad variable of another kind', () => {
    const message = refusal({ ...CORP, PORT: 'abc', SOCIAL_CORP_CLIENT_ID: '' });
    expect(message).toContain('PORT');
    expect(message).toContain('SOCIAL_CORP_CLIENT_ID');
  });
});
