import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, ConfigError, loadConfig } from '../../src/config.js';
import { configErrorOf } from '../support/config.js';


describe('configuration', () => {
  it('applies the documented defaults to an empty environment', () => {
    const config = loadConfig({});
    // Later issues add settings; these are the ones issue 2 fixes.
    expect(config).toMatchObject({
      production: false,
      host: '127.0.0.1',
      port: 4000,
      dataDir: './.data',
      databaseUrl: undefined,
      databaseTimeouts: { connect: 5, statement: 5 },
      databasePreparedStatements: true,
      shutdownTimeout: 10,
      logLevel: 'info',
      jwt: {
        algorithm: 'ES256',
        secret: undefined,
        privateKey: undefined,
        publicKey: undefined,
        issuer: 'authgraph',
        audience: 'authgraph',
      },
      keys: { encryptionKey: undefined, jwksMaxAge: 300, rotationInterval: 2_592_000 },
      accessTokenTtl: 900,
      refreshTokenTtl: 604_800,
      sessionMaxAge: 2_592_000,
      refreshReuseGrace: 10,
      purgeInterval: 3600,
      trustProxy: false,
    });
  });

  it('reads every variable when given', () => {
    const config = loadConfig({
      NODE_ENV: 'production',
      HOST: '0.0.0.0',
      PORT: '8080',
      DATA_DIR: '/var/lib/authgraph',
      DATABASE_URL: 'postgres://app:pw@db.internal:5432/auth',
      DATABASE_CONNECT_TIMEOUT: '3',
      DATABASE_STATEMENT_TIMEOUT: '15',
      DATABASE_PREPARED_STATEMENTS: 'false',
      SHUTDOWN_TIMEOUT: '30',
      LOG_LEVEL: 'debug',
      JWT_ALGORITHM: 'HS512',
      JWT_SECRET: 's'.repeat(64),
      JWT_ISSUER: 'https://auth.example.com',
      JWT_AUDIENCE: 'api',
      ACCESS_TOKEN_TTL: '300',
      REFRESH_TOKEN_TTL: '86400',
      SESSION_MAX_AGE: '172800',
      REFRESH_REUSE_GRACE: '0',
      TRUST_PROXY: 'true',
    });
    expect(config).toMatchObject({
      production: true,
      host: '0.0.0.0',
      port: 8080,
      dataDir: '/var/lib/authgraph',
      databaseUrl: 'postgres://app:pw@db.internal:5432/auth',
      databaseTimeouts: { connect: 3, statement: 15 },
      databasePreparedStatements: false,
      shutdownTimeout: 30,
      logLevel: 'debug',
      jwt: { algorithm: 'HS512', secret: 's'.repeat(64), issuer: 'https://auth.example.com', audience: 'api' },
      accessTokenTtl: 300,
      refreshTokenTtl: 86_400,
      sessionMaxAge: 172_800,
      refreshReuseGrace: 0,
      trustProxy: true,
    });
  });

  it('accepts a postgresql:// DATABASE_URL as well as postgres://', () => {
    expect(loadConfig({ DATABASE_URL: 'postgresql://u@h/db' }).databaseUrl).toBe('postgresql://u@h/db');
  });

  it('treats an empty or blank DATABASE_URL and JWT_SECRET as unset', () => {
    const config = loadConfig({ DATABASE_URL: '', JWT_SECRET: '   ' });
    expect(config.databaseUrl).toBeUndefined();
    expect(config.jwt.secret).toBeUndefined();
  });

  it('accepts RATE_LIMITS= (empty) as the default, on', () => {
    expect(loadConfig({ RATE_LIMITS: '' }).rateLimits.enabled).toBe(true);
    expect(loadConfig({ RATE_LIMITS: ' ' }).rateLimits.enabled).toBe(true);
  });

  it('accepts every supported JWT_ALGORITHM', () => {
    for (const alg of ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'ES256', 'EdDSA']) {
      expect(loadConfig({ JWT_ALGORITHM: alg }).jwt.algorithm).toBe(alg);
    }
  });

  it('rejects a non-numeric PORT with a ConfigError naming PORT', () => {
    expect(configErrorOf({ PORT: 'abc' }).message).toMatch(/\bPORT\b/);
  });

  it('rejects a PORT above 65535 with a ConfigError naming PORT', () => {
    expect(configErrorOf({ PORT: '70000' }).message).toMatch(/\bPORT\b/);
  });

  // `PORT=` (e.g. `PORT=${PORT}` in a compose file with PORT unset) must not silently mean
  // "any free port": either the default applies or start-up fails naming PORT.
  it('never turns an empty PORT into port 0 (a random port)', () => {
    let port: number | undefined;
    try {
      port = loadConfig({ PORT: '' }).port;
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/\bPORT\b/);
      return;
    }
    expect(port).toBe(4000);
  });

  // Likewise an empty REFRESH_REUSE_GRACE must not silently switch the grace period off.
  it('never turns an empty REFRESH_REUSE_GRACE into a grace of 0 seconds', () => {
    let grace: number | undefined;
    try {
      grace = loadConfig({ REFRESH_REUSE_GRACE: '' }).refreshReuseGrace;
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain('REFRESH_REUSE_GRACE');
      return;
    }
    expect(grace).toBe(10);
  });

  it('reads CORS_MAX_AGE: 600 by default, 0 allowed (no header), refused past 86400 or when not a whole number', () => {
    expect(loadConfig({}).corsMaxAge).toBe(600);
    expect(loadConfig({ CORS_MAX_AGE: '0' }).corsMaxAge).toBe(0);
    expect(loadConfig({ CORS_MAX_AGE: '7200' }).corsMaxAge).toBe(7200);
    for (const bad of ['86401', '-1', '1.5', 'ten']) expect(configErrorOf({ CORS_MAX_AGE: bad }).message, bad).toContain('CORS_MAX_AGE');
  });

  it('reads REFRESH_TOKEN_TRANSPORT: body by default, cookie and both, and refuses anything else naming it', () => {
    expect(loadConfig({}).refreshTokenTransport).toBe('body');
    expect(loadConfig({ REFRESH_TOKEN_TRANSPORT: 'cookie' }).refreshTokenTransport).toBe('cookie');
    expect(loadConfig({ REFRESH_TOKEN_TRANSPORT: 'both' }).refreshTokenTransport).toBe('both');
    for (const value of ['Cookie', 'header', 'true']) {
      expect(configErrorOf({ REFRESH_TOKEN_TRANSPORT: value }).message).toMatch(/REFRESH_TOKEN_TRANSPORT/);
    }
  });

  it('rejects a negative ACCESS_TOKEN_TTL with a ConfigError naming ACCESS_TOKEN_TTL', () => {
    expect(configErrorOf({ ACCESS_TOKEN_TTL: '-5' }).message).toContain('ACCESS_TOKEN_TTL');
  });

  it('rejects a zero or fractional TTL with a ConfigError naming the variable', () => {
    expect(configErrorOf({ REFRESH_TOKEN_TTL: '0' }).message).toContain('REFRESH_TOKEN_TTL');
    expect(configErrorOf({ SESSION_MAX_AGE: '1.5' }).message).toContain('SESSION_MAX_AGE');
  });

  it('rejects a DATABASE_PREPARED_STATEMENTS that is not a boolean with a ConfigError naming it', () => {
    expect(configErrorOf({ DATABASE_PREPARED_STATEMENTS: 'no' }).message).toContain('DATABASE_PREPARED_STATEMENTS');
  });

  it('rejects a zero database or shutdown timeout with a ConfigError naming it', () => {
    for (const name of ['DATABASE_CONNECT_TIMEOUT', 'DATABASE_STATEMENT_TIMEOUT', 'SHUTDOWN_TIMEOUT']) {
      expect(configErrorOf({ [name]: '0' }).message).toContain(name);
    }
  });

  it('rejects a negative REFRESH_REUSE_GRACE with a ConfigError naming it', () => {
    expect(configErrorOf({ REFRESH_REUSE_GRACE: '-1' }).message).toContain('REFRESH_REUSE_GRACE');
  });

  it('rejects an unknown JWT_ALGORITHM with a ConfigError naming JWT_ALGORITHM', () => {
    expect(configErrorOf({ JWT_ALGORITHM: 'HS1' }).message).toContain('JWT_ALGORITHM');
    expect(configErrorOf({ JWT_ALGORITHM: 'none' }).message).toContain('JWT_ALGORITHM');
  });

  it('rejects a non-PostgreSQL DATABASE_URL with a ConfigError naming DATABASE_URL', () => {
    expect(configErrorOf({ DATABASE_URL: 'mysql://x' }).message).toContain('DATABASE_URL');
    expect(configErrorOf({ DATABASE_URL: 'not a url' }).message).toContain('DATABASE_URL');
  });

  it('rejects an unknown LOG_LEVEL with a ConfigError naming LOG_LEVEL', () => {
    expect(configErrorOf({ LOG_LEVEL: 'loud' }).message).toContain('LOG_LEVEL');
  });

  it('names every bad variable at once, and not the good ones', () => {
    const message = configErrorOf({ PORT: 'abc', ACCESS_TOKEN_TTL: '-5', HOST: 'localhost' }).message;
    expect(message).toMatch(/\bPORT\b/);
    expect(message).toContain('ACCESS_TOKEN_TTL');
    expect(message).not.toContain('HOST');
  });

  it('reads TRUST_PROXY=true and TRUST_PROXY=1 as trusting the proxy', () => {
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ TRUST_PROXY: '1' }).trustProxy).toBe(true);
  });

  it('reads TRUST_PROXY unset, empty, false or 0 as not trusting the proxy', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '0' }).trustProxy).toBe(false);
  });

  it('rejects any other TRUST_PROXY value with a ConfigError naming TRUST_PROXY', () => {
    expect(configErrorOf({ TRUST_PROXY: 'yes' }).message).toContain('TRUST_PROXY');
  });

  it('counts as production only when NODE_ENV is exactly production', () => {
    expect(loadConfig({ NODE_ENV: 'production' }).production).toBe(true);
    expect(loadConfig({ NODE_ENV: 'test' }).production).toBe(false);
    expect(loadConfig({ NODE_ENV: 'development' }).production).toBe(false);
  });
});

describe('signing-key variables', () => {
  it('defaults JWT_ALGORITHM to ES256, or to HS256 when JWT_SECRET is set (a deployment from before keeps its tokens)', () => {
    expect(loadConfig({}).jwt.algorithm).toBe('ES256');
    expect(loadConfig({ JWT_SECRET: 's'.repeat(32) }).jwt.algorithm).toBe('HS256');
    // An explicit JWT_ALGORITHM wins either way.
    expect(loadConfig({ JWT_SECRET: 's'.repeat(32), JWT_ALGORITHM: 'ES256' }).jwt.algorithm).toBe('ES256');
    expect(loadConfig({ JWT_ALGORITHM: 'HS512' }).jwt.algorithm).toBe('HS512');
  });

  // 0xfb bytes: standard base64 "+/v7", URL-safe "-_v7", so both alphabets are exercised.
  const key = Buffer.alloc(32, 0xfb);
  const encryptionKey = (value: string) => loadConfig({ KEY_ENCRYPTION_KEY: value }).keys.encryptionKey;

  it('reads KEY_ENCRYPTION_KEY as 32 bytes given in hex (either case)', () => {
    expect(encryptionKey(key.toString('hex'))).toEqual(key);
    expect(encryptionKey(key.toString('hex').toUpperCase())).toEqual(key);
  });

  it('reads KEY_ENCRYPTION_KEY as 32 bytes given in base64, standard or URL-safe, padded or not', () => {
    const standard = key.toString('base64');
    expect(standard).toMatch(/[+/]/);
    expect(encryptionKey(standard)).toEqual(key);
    expect(encryptionKey(standard.replace(/=$/, ''))).toEqual(key);
    const urlSafe = key.toString('base64url');
    expect(urlSafe).toMatch(/[-_]/);
    expect(encryptionKey(urlSafe)).toEqual(key);
    // Surrounding whitespace (a value pasted with its line break) is not part of the key.
    expect(encryptionKey(` ${standard}\n`)).toEqual(key);
    const random = Buffer.from('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', 'hex');
    expect(encryptionKey(random.toString('base64'))).toEqual(random);
  });

  it.each([
    ['31 bytes of hex', Buffer.alloc(31, 1).toString('hex')],
    ['33 bytes of hex', Buffer.alloc(33, 1).toString('hex')],
    ['31 bytes of base64', Buffer.alloc(31, 1).toString('base64')],
    ['33 bytes of base64', Buffer.alloc(33, 1).toString('base64')],
    ['16 bytes of base64', Buffer.alloc(16, 1).toString('base64')],
    ['a passphrase', 'correct horse battery staple'],
    ['64 characters that are not hex', 'z'.repeat(64)],
    ['44 characters that are not base64', `${'!'.repeat(43)}=`],
  ])('refuses KEY_ENCRYPTION_KEY of %s with a ConfigError naming it, without echoing the value', (_name, value) => {
    const message = configErrorOf({ KEY_ENCRYPTION_KEY: value }).message;
    expect(message).toContain('KEY_ENCRYPTION_KEY');
    expect(message).toContain('32 bytes');
    expect(message).not.toContain(value);
  });

  it('reads JWKS_MAX_AGE in seconds, small values included, and refuses 0 or junk naming it', () => {
    expect(loadConfig({ JWKS_MAX_AGE: '600' }).keys.jwksMaxAge).toBe(600);
    expect(loadConfig({ JWKS_MAX_AGE: '1' }).keys.jwksMaxAge).toBe(1);
    for (const bad of ['0', '-1', '1.5', '5m', 'abc']) {
      expect(configErrorOf({ JWKS_MAX_AGE: bad }).message, bad).toContain('JWKS_MAX_AGE');
    }
  });

  it('reads KEY_ROTATION_INTERVAL in seconds, 0 (off) and small values included, and refuses junk naming it', () => {
    expect(loadConfig({ KEY_ROTATION_INTERVAL: '86400' }).keys.rotationInterval).toBe(86_400);
    expect(loadConfig({ KEY_ROTATION_INTERVAL: '1' }).keys.rotationInterval).toBe(1);
    expect(loadConfig({ KEY_ROTATION_INTERVAL: '0' }).keys.rotationInterval).toBe(0);
    for (const bad of ['-1', '1.5', '30d', 'off']) {
      expect(configErrorOf({ KEY_ROTATION_INTERVAL: bad }).message, bad).toContain('KEY_ROTATION_INTERVAL');
    }
  });
});

// `VAR=` (e.g. `VAR=${VAR}` in a compose file with VAR unset) means "unset", for every variable
// alike: the list comes from the schema, so a new variable is covered without touching this.
describe('a blank value means unset', () => {
  const unset = loadConfig({});
  const production = loadConfig({ NODE_ENV: 'production' });

  it.each(CONFIG_VARIABLES)('treats %s= (empty or whitespace) as unset', (name) => {
    expect(loadConfig({ [name]: '' })).toEqual(unset);
    expect(loadConfig({ [name]: '  \t' })).toEqual(unset);
    if (name !== 'NODE_ENV') expect(loadConfig({ NODE_ENV: 'production', [name]: '' })).toEqual(production);
  });

  it('covers the variables of every kind: enums, flags, texts with defaults, numbers, limits', () => {
    for (const name of ['RATE_LIMITS', 'LOG_LEVEL', 'TRUST_PROXY', 'HOST', 'MAIL_FROM', 'PORT', 'RATE_LIMIT_LOGIN_IP']) {
      expect(CONFIG_VARIABLES).toContain(name);
    }
  });
});
