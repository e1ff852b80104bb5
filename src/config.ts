import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { parseSocialConfig, type SocialConfig } from './social/social-config.js';

/** Signing algorithms authgraph accepts for access tokens. */
export const JWT_ALGORITHMS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'ES256', 'EdDSA'] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

/** Raised at start-up when the environment is unusable; the message names the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

// Numbers are plain digits (no 0x50, no 1e3). Blank values never reach these: loadConfig drops them.
const wholeNumber = (fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .regex(/^\d+$/, 'expected a whole number')
    .optional()
    .transform((value) => (value === undefined ? fallback : Number(value)))
    .pipe(z.number().min(min).max(max));
const seconds = (fallback: number) => wholeNumber(fallback, 1);
const flagDefaulting = (fallback: 'true' | 'false') =>
  z
    .enum(['true', 'false', '1', '0'])
    .default(fallback)
    .transform((v) => v === 'true' || v === '1');
const flag = flagDefaulting('false');
const optionalText = z.string().optional();

/** 32 bytes given as hex or base64 (standard or URL-safe), or null. */
function decodeKey(value: string): Buffer | null {
  if (/^[0-9a-fA-F]{64}$/.test(value)) return Buffer.from(value, 'hex');
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(value)) return null;
  const bytes = Buffer.from(value, 'base64');
  return bytes.length === 32 ? bytes : null;
}

const envSchema = z.object({
  NODE_ENV: z.string().default('development'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: wholeNumber(4000, 0, 65_535),
  DATA_DIR: z.string().min(1).default('./.data'),
  DATABASE_URL: optionalText.pipe(z.url({ protocol: /^postgres(ql)?$/ }).optional()),
  DATABASE_LISTEN_URL: optionalText.pipe(z.url({ protocol: /^postgres(ql)?$/ }).optional()),
  DATABASE_CONNECT_TIMEOUT: seconds(5),
  DATABASE_STATEMENT_TIMEOUT: seconds(5),
  DATABASE_PREPARED_STATEMENTS: flagDefaulting('true'),
  SHUTDOWN_TIMEOUT: seconds(10),
  /** Test hook, honoured only with NODE_ENV=test: the start-up waits for a signal at this stage. */
  AUTHGRAPH_TEST_PAUSE_STARTUP: z.enum(['open-database', 'migrate', 'mid-migration', 'listen']).optional(),
  // Each open stream holds a connection (a file descriptor) for as long as it lives.
  VIEWER_EVENTS_MAX_STREAMS: wholeNumber(1000, 1),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // Unset: ES256, or HS256 when JWT_SECRET is set (a deployment from before the key set keeps its tokens).
  JWT_ALGORITHM: z.enum(JWT_ALGORITHMS).optional(),
  JWT_SECRET: optionalText,
  JWT_PRIVATE_KEY: optionalText,
  JWT_PUBLIC_KEY: optionalText,
  JWT_ISSUER: z.string().min(1).default('authgraph'),
  JWT_AUDIENCE: z.string().min(1).default('authgraph'),
  KEY_ENCRYPTION_KEY: optionalText.transform((value, ctx) => {
    if (value === undefined) return undefined;
    const key = decodeKey(value.trim());
    if (key) return key;
    ctx.addIssue({ code: 'custom', message: 'expected 32 bytes, as base64 (44 characters) or hex (64 characters)' });
    return z.NEVER;
  }),
  JWKS_MAX_AGE: seconds(300),
  KEY_ROTATION_INTERVAL: wholeNumber(2_592_000, 0),
  ACCESS_TOKEN_TTL: seconds(900),
  REFRESH_TOKEN_TTL: seconds(604_800),
  SESSION_MAX_AGE: seconds(2_592_000),
  REFRESH_REUSE_GRACE: wholeNumber(10, 0),
  REFRESH_TOKEN_TRANSPORT: z.enum(['body', 'cookie', 'both']).default('body'),
  PURGE_INTERVAL: seconds(3600),
  TRUST_PROXY: flag,
  // Account lifecycle (email flows)
  PUBLIC_URL: optionalText.pipe(z.url({ protocol: /^https?$/ }).optional()),
  SMTP_URL: optionalText.pipe(z.url({ protocol: /^smtps?$/ }).optional()),
  MAIL_FROM: z.string().min(3).default('authgraph <no-reply@localhost>'),
  EMAIL_VERIFICATION_TTL: seconds(86_400),
  PASSWORD_RESET_TTL: seconds(3600),
  REQUIRE_EMAIL_VERIFICATION: flag,
  // Second factors and step-up
  REAUTH_MAX_AGE: seconds(300),
  REQUIRE_SECOND_FACTOR_FOR_ROLES: optionalText,
  // Passkeys (WebAuthn): the relying party. Unset outside production: derived from PUBLIC_URL.
  RP_ID: optionalText.pipe(
    z
      .string()
      .regex(/^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/, 'expected a lower-case domain name without scheme or port, e.g. example.com')
      .optional(),
  ),
  RP_NAME: optionalText,
  RP_ORIGINS: optionalText,
  // Abuse resistance
  RATE_LIMITS: z.enum(['on', 'off']).default('on'),
  LOCKOUT_BASE: seconds(60),
  LOCKOUT_MAX: seconds(900),
  ARGON2_MAX_CONCURRENCY: wholeNumber(availableParallelism() * 2, 1),
  ARGON2_QUEUE_LIMIT: wholeNumber(64, 0),
  ARGON2_QUEUE_TIMEOUT_MS: wholeNumber(2000, 1),
  INTROSPECTION: z.enum(['true', 'false']).optional(),
  GRAPHIQL: z.enum(['true', 'false']).optional(),
  CORS_ORIGINS: optionalText,
  // Browsers cap it (Chromium at 7200, Firefox at 86400); 0 sends no header (their 5 s default).
  CORS_MAX_AGE: wholeNumber(600, 0, 86_400),
  BODY_LIMIT: wholeNumber(102_400, 1),
  AUDIT_RETENTION_DAYS: seconds(90),
  GRAPHQL_MAX_DEPTH: seconds(10),
  GRAPHQL_MAX_ALIASES: seconds(15),
  GRAPHQL_MAX_TOKENS: seconds(1000),
  GRAPHQL_MAX_DIRECTIVES: seconds(20),
  GRAPHQL_MAX_COST: seconds(5000),
  // Social sign-in: SOCIAL_<ID>_CLIENT_ID, _CLIENT_SECRET, _ISSUER, _SCOPES, _NAME per listed
  // provider (and SOCIAL_GITHUB_WEB_URL, _API_URL) are read by social/social-config.ts.
  SOCIAL_PROVIDERS: optionalText,
  SOCIAL_REDIRECT_URIS: optionalText,
  SOCIAL_STATE_TTL: seconds(600),
  // Metrics (GET /metrics)
  METRICS: flag,
  METRICS_TOKEN: optionalText,
});

/** `count` attempts per `seconds`-long window. */
export interface RateLimit {
  count: number;
  seconds: number;
}

/**
 * Every limit, by field and key; each is configured by `RATE_LIMIT_<NAME>` (e.g.
 * RATE_LIMIT_LOGIN_IP=10/60). LOGIN_ACCOUNT is not a window: it is the lockout's sliding cap on failed
 * sign-ins per email (abuse/lockout-rule.ts).
 */
export const RATE_LIMIT_DEFAULTS = {
  LOGIN_IP: { count: 10, seconds: 60 },
  LOGIN_ACCOUNT: { count: 5, seconds: 900 },
  REGISTER_IP: { count: 10, seconds: 3600 },
  REFRESH_IP: { count: 60, seconds: 60 },
  REQUEST_PASSWORD_RESET_IP: { count: 5, seconds: 3600 },
  REQUEST_PASSWORD_RESET_EMAIL: { count: 3, seconds: 3600 },
  RESET_PASSWORD_IP: { count: 10, seconds: 3600 },
  CHANGE_PASSWORD_ACCOUNT: { count: 10, seconds: 3600 },
  CHANGE_PASSWORD_IP: { count: 20, seconds: 3600 },
  REQUEST_EMAIL_VERIFICATION_ACCOUNT: { count: 3, seconds: 3600 },
  VERIFY_EMAIL_IP: { count: 20, seconds: 3600 },
  SOCIAL_SIGN_IN_IP: { count: 20, seconds: 60 },
  SECOND_FACTOR_IP: { count: 10, seconds: 60 },
  FACTOR_CHANGE_ACCOUNT: { count: 10, seconds: 3600 },
} as const satisfies Record<string, RateLimit>;
export type RateLimitName = keyof typeof RATE_LIMIT_DEFAULTS;

/** Every variable loadConfig reads: the schema's, and RATE_LIMIT_<NAME> for each limit. */
export const CONFIG_VARIABLES: readonly string[] = [
  ...Object.keys(envSchema.shape),
  ...Object.keys(RATE_LIMIT_DEFAULTS).map((name) => `RATE_LIMIT_${name}`),
];

const rateLimitShape = z
  .string()
  .regex(/^\d+\/\d+$/, 'expected count/seconds, e.g. 10/60')
  .transform((v) => {
    const [count, seconds] = v.split('/').map(Number);
    return { count: count!, seconds: seconds! };
  })
  .refine((v) => v.count > 0 && v.seconds > 0, 'count and seconds must be positive');

function parseRateLimits(env: Record<string, string | undefined>): { limits: Record<RateLimitName, RateLimit>; problems: string[] } {
  const limits = { ...RATE_LIMIT_DEFAULTS } as Record<RateLimitName, RateLimit>;
  const problems: string[] = [];
  for (const name of Object.keys(RATE_LIMIT_DEFAULTS) as RateLimitName[]) {
    const raw = env[`RATE_LIMIT_${name}`];
    if (raw === undefined) continue;
    const parsed = rateLimitShape.safeParse(raw.trim());
    if (parsed.success) limits[name] = parsed.data;
    else problems.push(`RATE_LIMIT_${name}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  }
  return { limits, problems };
}

/**
 * The environment without its blank values: `VAR=` (e.g. `VAR=${VAR}` in a compose file with VAR
 * unset) means "unset" for every variable alike, never 0, "" or a refusal.
 */
function withoutBlanks(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1].trim() !== ''),
  );
}

/** The shortest METRICS_TOKEN accepted: a bearer secret anyone can try guesses against. */
export const METRICS_TOKEN_MIN_LENGTH = 32;

function metricsProblems(e: z.output<typeof envSchema>): string[] {
  if (!e.METRICS) return [];
  if (e.METRICS_TOKEN === undefined) {
    return [
      `METRICS_TOKEN: required when METRICS=true (a secret of at least ${METRICS_TOKEN_MIN_LENGTH} characters that scrapers send as a bearer token)`,
    ];
  }
  if (e.METRICS_TOKEN.length < METRICS_TOKEN_MIN_LENGTH) {
    return [`METRICS_TOKEN: must be at least ${METRICS_TOKEN_MIN_LENGTH} characters (it has ${e.METRICS_TOKEN.length})`];
  }
  // A bearer token is one word: a scraper could never send one with spaces in it.
  if (/\s/.test(e.METRICS_TOKEN)) return ['METRICS_TOKEN: must not contain whitespace'];
  return [];
}

/** The origins of RP_ORIGINS (comma-separated), each as its canonical origin; undefined when unset. */
function originsOf(value: string | undefined): string[] | undefined {
  return value?.split(',').map((origin) => origin.trim()).filter(Boolean);
}

/**
 * RP_ORIGINS: each an exact http(s) origin (no path), whose host is RP_ID or a subdomain of it
 * (WebAuthn refuses any other pairing in the browser; saying so at start-up beats a passkey that
 * can never be used). That both are set in production is checked where the services are made
 * (credentials/webauthn.ts), as SMTP_URL is.
 */
function relyingPartyProblems(e: z.output<typeof envSchema>): string[] {
  const problems: string[] = [];
  for (const origin of originsOf(e.RP_ORIGINS) ?? []) {
    const url = URL.canParse(origin) ? new URL(origin) : null;
    if (!url || !/^https?:$/.test(url.protocol) || url.origin !== origin) {
      problems.push(`RP_ORIGINS: "${origin}" is not an origin (scheme://host[:port], no path or trailing slash)`);
    } else if (e.RP_ID !== undefined && url.hostname !== e.RP_ID && !url.hostname.endsWith(`.${e.RP_ID}`)) {
      problems.push(`RP_ORIGINS: "${origin}" is not on RP_ID ${e.RP_ID} or a subdomain of it`);
    }
  }
  return problems;
}

/** Parses and validates the environment; throws a ConfigError naming every bad variable. */
export function loadConfig(rawEnv: Record<string, string | undefined> = process.env): Config {
  const env = withoutBlanks(rawEnv);
  const parsed = envSchema.safeParse(env);
  const rateLimits = parseRateLimits(env);
  const problems = [
    ...(parsed.success ? [] : parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`)),
    ...rateLimits.problems,
  ];
  if (parsed.success) problems.push(...metricsProblems(parsed.data), ...relyingPartyProblems(parsed.data));
  // Read even when other variables are bad, so one refusal names every bad variable.
  const social = parseSocialConfig(env, {
    production: env.NODE_ENV === 'production',
    stateTtl: parsed.success ? parsed.data.SOCIAL_STATE_TTL : 0,
  });
  problems.push(...social.problems);
  if (!parsed.success || problems.length > 0) {
    throw new ConfigError(`Invalid environment:\n  ${problems.join('\n  ')}`);
  }
  return toConfig(parsed.data, rateLimits.limits, social.social);
}

/** The validated configuration, read once at start-up (its type is inferred from this shape). */
export type Config = ReturnType<typeof toConfig>;

function toConfig(e: z.output<typeof envSchema>, limits: Record<RateLimitName, RateLimit>, social: SocialConfig) {
  const production = e.NODE_ENV === 'production';
  return {
    production,
    host: e.HOST,
    port: e.PORT,
    dataDir: e.DATA_DIR,
    databaseUrl: e.DATABASE_URL,
    /** Where LISTEN connects: a session of its own, past a transaction-mode pooler. */
    databaseListenUrl: e.DATABASE_LISTEN_URL ?? e.DATABASE_URL,
    /** Seconds to open a PostgreSQL connection, and that one statement may run. */
    databaseTimeouts: { connect: e.DATABASE_CONNECT_TIMEOUT, statement: e.DATABASE_STATEMENT_TIMEOUT },
    /** Whether statements are prepared once per connection (false behind a pooler that cannot keep them). */
    databasePreparedStatements: e.DATABASE_PREPARED_STATEMENTS,
    /** Seconds that requests in flight get to finish after SIGTERM or SIGINT. */
    shutdownTimeout: e.SHUTDOWN_TIMEOUT,
    /** Where the start-up waits for a signal (tests only: NODE_ENV=test). */
    startupPause: e.NODE_ENV === 'test' ? e.AUTHGRAPH_TEST_PAUSE_STARTUP : undefined,
    viewerEventsMaxStreams: e.VIEWER_EVENTS_MAX_STREAMS,
    logLevel: e.LOG_LEVEL,
    jwt: {
      algorithm: (e.JWT_ALGORITHM ?? (e.JWT_SECRET ? 'HS256' : 'ES256')) as JwtAlgorithm,
      secret: e.JWT_SECRET,
      privateKey: e.JWT_PRIVATE_KEY,
      publicKey: e.JWT_PUBLIC_KEY,
      issuer: e.JWT_ISSUER,
      audience: e.JWT_AUDIENCE,
    },
    keys: {
      /** 32 bytes that encrypt the stored private keys (undefined: generated into DATA_DIR outside production). */
      encryptionKey: e.KEY_ENCRYPTION_KEY,
      /** Seconds a client may cache the JWKS; a new key is published for twice this before it signs. */
      jwksMaxAge: e.JWKS_MAX_AGE,
      /** Seconds between automatic rotations; 0: never. */
      rotationInterval: e.KEY_ROTATION_INTERVAL,
    },
    accessTokenTtl: e.ACCESS_TOKEN_TTL,
    refreshTokenTtl: e.REFRESH_TOKEN_TTL,
    sessionMaxAge: e.SESSION_MAX_AGE,
    refreshReuseGrace: e.REFRESH_REUSE_GRACE,
    /** Where refresh tokens travel: the AuthPayload body, an HttpOnly cookie, or both. */
    refreshTokenTransport: e.REFRESH_TOKEN_TRANSPORT,
    purgeInterval: e.PURGE_INTERVAL,
    trustProxy: e.TRUST_PROXY,
    /** Base URL of the public site, for links in mails; https turns on HSTS. */
    publicUrl: e.PUBLIC_URL,
    mail: { smtpUrl: e.SMTP_URL, from: e.MAIL_FROM },
    emailVerificationTtl: e.EMAIL_VERIFICATION_TTL,
    passwordResetTtl: e.PASSWORD_RESET_TTL,
    requireEmailVerification: e.REQUIRE_EMAIL_VERIFICATION,
    stepUp: {
      /** Seconds after a (re-)authentication during which the `recentAuth` scope holds. */
      reauthMaxAge: e.REAUTH_MAX_AGE,
      /** Roles whose permissions a session may use only after a second factor. */
      secondFactorRoles: (e.REQUIRE_SECOND_FACTOR_FOR_ROLES ?? '').split(',').map((role) => role.trim()).filter(Boolean),
    },
    /** The WebAuthn relying party as configured; unset parts are derived from PUBLIC_URL outside production (credentials/webauthn.ts). */
    passkeys: { rpId: e.RP_ID, rpName: e.RP_NAME ?? e.JWT_ISSUER, origins: originsOf(e.RP_ORIGINS) },
    rateLimits: {
      enabled: e.RATE_LIMITS === 'on',
      limits,
      lockoutBase: e.LOCKOUT_BASE,
      lockoutMax: e.LOCKOUT_MAX,
    },
    argon2: {
      maxConcurrency: e.ARGON2_MAX_CONCURRENCY,
      queueLimit: e.ARGON2_QUEUE_LIMIT,
      queueTimeoutMs: e.ARGON2_QUEUE_TIMEOUT_MS,
    },
    introspection: e.INTROSPECTION ? e.INTROSPECTION === 'true' : !production,
    graphiql: e.GRAPHIQL ? e.GRAPHIQL === 'true' : !production,
    /** Allowed CORS origins; `true` allows any origin (development default). */
    corsOrigins: e.CORS_ORIGINS
      ? e.CORS_ORIGINS.split(',').map((o) => o.trim()).filter(Boolean)
      : production
        ? []
        : (true as const),
    /** Seconds a browser may cache a preflight's answer (Access-Control-Max-Age); 0: not sent. */
    corsMaxAge: e.CORS_MAX_AGE,
    bodyLimit: e.BODY_LIMIT,
    auditRetentionDays: e.AUDIT_RETENTION_DAYS,
    graphqlLimits: {
      maxDepth: e.GRAPHQL_MAX_DEPTH,
      maxAliases: e.GRAPHQL_MAX_ALIASES,
      maxTokens: e.GRAPHQL_MAX_TOKENS,
      maxDirectives: e.GRAPHQL_MAX_DIRECTIVES,
      maxCost: e.GRAPHQL_MAX_COST,
    },
    /** Social sign-in: the providers (SOCIAL_PROVIDERS), the allowed redirect URIs, the state's lifetime. */
    social,
    /** GET /metrics: served only when enabled, to requests bearing the token (required then). */
    metrics: { enabled: e.METRICS, token: e.METRICS ? e.METRICS_TOKEN : undefined },
  };
}
