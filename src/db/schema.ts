import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

// Millisecond precision, as JavaScript dates have: a pagination cursor built from a row's
// created_at then names that row exactly.
const createdAt = () =>
  timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().default(sql`now()`);

/** Accounts. `email` holds the normalized address; uniqueness is enforced here, not in code. */
export const users = pgTable('users', {
  id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
  email: text('email').notNull().unique('users_email_unique'),
  /** argon2id; null for an account made through social sign-in until a password reset sets one. */
  passwordHash: text('password_hash'),
  name: text('name'),
  emailVerified: boolean('email_verified').notNull().default(false),
  active: boolean('active').notNull().default(true),
  /** Access tokens issued before this instant are rejected (logout everywhere). */
  tokensValidAfter: timestamp('tokens_valid_after', { withTimezone: true }),
  lastLoginAt: timestamp('last_login_at', { withTimezone: true }),
  createdAt: createdAt(),
});

export const roles = pgTable('roles', {
  name: text('name').primaryKey(),
  description: text('description').notNull(),
});

export const permissions = pgTable('permissions', {
  name: text('name').primaryKey(),
  description: text('description').notNull(),
});

export const rolePermissions = pgTable(
  'role_permissions',
  {
    role: text('role')
      .notNull()
      .references(() => roles.name, { onDelete: 'cascade' }),
    permission: text('permission')
      .notNull()
      .references(() => permissions.name, { onDelete: 'cascade' }),
  },
  (t) => [primaryKey({ columns: [t.role, t.permission] })],
);

export const userRoles = pgTable(
  'user_roles',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    role: text('role')
      .notNull()
      .references(() => roles.name, { onDelete: 'restrict' }),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.role] }), index('user_roles_role_idx').on(t.role)],
);

/** One signed-in device. Its refresh tokens and access tokens die with it. */
export const sessions = pgTable(
  'sessions',
  {
    id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    createdAt: createdAt(),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }).notNull(),
    /** Absolute end of the session (SESSION_MAX_AGE after sign-in); no refresh goes past it. */
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
    ip: text('ip'),
    userAgent: text('user_agent'),
    /**
     * How the session was authenticated (RFC 8176 values: `pwd`, `otp`, `hwk`, `user`), copied
     * into every access token of it as `amr`.
     */
    amr: text('amr').array().notNull().default(sql`'{pwd}'`),
    /** The last authentication or re-authentication of the session (`auth_time` of its access tokens). */
    authTime: timestamp('auth_time', { withTimezone: true }).notNull().default(sql`now()`),
    /**
     * Wrong second-factor proofs (codes, passkey assertions) given to `reauthenticate` since the
     * session last passed one: capped whatever RATE_LIMITS says, as a sign-in challenge's guesses are.
     */
    factorFailures: integer('factor_failures').notNull().default(0),
  },
  (t) => [index('sessions_user_id_idx').on(t.userId), index('sessions_expires_at_idx').on(t.expiresAt)],
);

/**
 * Refresh tokens are `<id>.<secret>`; only SHA-256 of the secret is kept. A spent token keeps
 * its row (with `rotatedAt`) until it expires, so a replay of it can be recognised.
 */
export const refreshTokens = pgTable(
  'refresh_tokens',
  {
    id: text('id').primaryKey(),
    sessionId: uuid('session_id')
      .notNull()
      .references(() => sessions.id, { onDelete: 'cascade' }),
    parentId: text('parent_id'),
    secretHash: text('secret_hash').notNull(),
    createdAt: createdAt(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    rotatedAt: timestamp('rotated_at', { withTimezone: true }),
  },
  (t) => [
    index('refresh_tokens_session_id_idx').on(t.sessionId),
    index('refresh_tokens_expires_at_idx').on(t.expiresAt),
  ],
);

/** Access tokens revoked before their expiry (logout). Rows are purged once `expiresAt` passes. */
export const revokedTokens = pgTable(
  'revoked_tokens',
  {
    jti: text('jti').primaryKey(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  },
  (t) => [index('revoked_tokens_expires_at_idx').on(t.expiresAt)],
);

export type UserRow = typeof users.$inferSelect;
export type SessionRow = typeof sessions.$inferSelect;
export type RefreshTokenRow = typeof refreshTokens.$inferSelect;

/** Single-use emailed tokens (email verification, password reset); only a hash is kept. */
export const oneTimeTokens = pgTable(
  'one_time_tokens',
  {
    id: text('id').primaryKey(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    /** What the token is for; a token never serves another purpose. */
    purpose: text('purpose', { enum: ['verify_email', 'reset_password'] }).notNull(),
    secretHash: text('secret_hash').notNull(),
    createdAt: createdAt(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    usedAt: timestamp('used_at', { withTimezone: true }),
  },
  (t) => [
    index('one_time_tokens_user_purpose_idx').on(t.userId, t.purpose),
    index('one_time_tokens_expires_at_idx').on(t.expiresAt),
  ],
);

/**
 * Fixed-window attempt counters, one row per limit and key (e.g. LOGIN_IP and a client IP,
 * stored hashed). Shared by every server instance on the database; ended windows are purged.
 */
export const rateLimits = pgTable(
  'rate_limits',
  {
    key: text('key').primaryKey(),
    windowStart: timestamp('window_start', { withTimezone: true }).notNull(),
    windowEnd: timestamp('window_end', { withTimezone: true }).notNull(),
    hits: integer('hits').notNull(),
  },
  (t) => [index('rate_limits_window_end_idx').on(t.windowEnd)],
);

/**
 * Failed sign-ins per normalized email, whether or not an account has it (so a lockout reveals
 * nothing), and the lockout they earned (see abuse/lockout-rule.ts). Keyed by SHA-256 of the
 * email, not the address.
 */
export const loginLockouts = pgTable('login_lockouts', {
  emailHash: text('email_hash').primaryKey(),
  /** The latest failures, oldest first; at most RATE_LIMIT_LOGIN_ACCOUNT's count of them. */
  failureTimes: timestamp('failure_times', { withTimezone: true })
    .array()
    .notNull()
    .default(sql`'{}'`),
  /** How many lockouts in a row; each doubles the next one, up to the maximum. */
  level: integer('level').notNull().default(0),
  lockedUntil: timestamp('locked_until', { withTimezone: true }),
  /** The end of the wait that a refusal was last recorded for: one audit event per lockout. */
  refusalRecordedFor: timestamp('refusal_recorded_for', { withTimezone: true }),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull(),
});

/** The audit log: who did what, when, from where. Never a password or a token. */
export const authEvents = pgTable(
  'auth_events',
  {
    id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
    createdAt: createdAt(),
    type: text('type').notNull(),
    userId: uuid('user_id').references(() => users.id, { onDelete: 'set null' }),
    ip: text('ip'),
    userAgent: text('user_agent'),
    detail: jsonb('detail').$type<Record<string, unknown>>().notNull().default({}),
  },
  (t) => [
    index('auth_events_created_at_idx').on(t.createdAt, t.id),
    index('auth_events_user_id_idx').on(t.userId),
    index('auth_events_type_idx').on(t.type),
  ],
);

export type OneTimeTokenRow = typeof oneTimeTokens.$inferSelect;
export type AuthEventRow = typeof authEvents.$inferSelect;

/**
 * The access-token signing keys, shared by every instance on the database. `next` keys are
 * published before they sign, `current` signs, `retired` keys are still published and accepted
 * until `remove_at`, `revoked` keys (compromised: `keys retire`) are neither, and are kept
 * (without their private key), as are `removed` keys from the environment once their retention
 * ends, so that a key given in the environment is never re-added.
 */
export const signingKeys = pgTable(
  'signing_keys',
  {
    kid: text('kid').primaryKey(),
    algorithm: text('algorithm').notNull(),
    state: text('state', { enum: ['next', 'current', 'retired', 'revoked', 'removed'] }).notNull(),
    /** Where the key came from: generated here, or JWT_PRIVATE_KEY. */
    source: text('source', { enum: ['generated', 'environment'] }).notNull(),
    /** The public JWK (no private member), as published. */
    publicJwk: jsonb('public_jwk').$type<Record<string, unknown>>().notNull(),
    /** The PKCS#8 PEM under AES-256-GCM with KEY_ENCRYPTION_KEY (see tokens/key-encryption.ts); null once revoked. */
    privateKey: text('private_key'),
    createdAt: createdAt(),
    /** A `next` key signs from this instant on (published for 2 × JWKS_MAX_AGE before). */
    activatesAt: timestamp('activates_at', { withTimezone: true, precision: 3 }).notNull(),
    /** When it stopped signing; it is deleted at `remove_at`. */
    retiredAt: timestamp('retired_at', { withTimezone: true, precision: 3 }),
    removeAt: timestamp('remove_at', { withTimezone: true, precision: 3 }),
  },
  (t) => [
    // At most one key signs, and at most one waits to.
    uniqueIndex('signing_keys_one_current').on(t.state).where(sql`state = 'current'`),
    uniqueIndex('signing_keys_one_next').on(t.state).where(sql`state = 'next'`),
  ],
);
export type SigningKeyRow = typeof signingKeys.$inferSelect;

/**
 * A provider account linked to a user (social sign-in): `subject` is the provider's stable id
 * for it (an ID token's `sub`, GitHub's numeric user id), unique per provider. `email` is what
 * the provider said at linking, for the user to recognise the identity; it decides nothing.
 */
export const identities = pgTable(
  'identities',
  {
    id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    provider: text('provider').notNull(),
    subject: text('subject').notNull(),
    email: text('email'),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('identities_provider_subject_unique').on(t.provider, t.subject), index('identities_user_id_idx').on(t.userId)],
);
export type IdentityRow = typeof identities.$inferSelect;

/**
 * A social sign-in or link in progress, from its start to the provider's redirect back. Keyed
 * by SHA-256 of the `state` handed to the frontend, which is never stored; the PKCE verifier
 * and nonce stay here (they are worth nothing without the provider's code). Consumed by a
 * DELETE … RETURNING, so of two completions with one state exactly one gets the row.
 */
export const socialSignInStates = pgTable(
  'social_sign_in_states',
  {
    stateHash: text('state_hash').primaryKey(),
    provider: text('provider').notNull(),
    codeVerifier: text('code_verifier').notNull(),
    nonce: text('nonce').notNull(),
    redirectUri: text('redirect_uri').notNull(),
    /** The signed-in user a link was started by; null for a sign-in. */
    userId: uuid('user_id').references(() => users.id, { onDelete: 'cascade' }),
    createdAt: createdAt(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  },
  (t) => [index('social_sign_in_states_expires_at_idx').on(t.expiresAt)],
);

/**
 * A user's authenticator-app (TOTP, RFC 6238) secret, sealed with the key-encryption key (see
 * tokens/key-encryption.ts). `pendingSecret` is an enrolment waiting for its first code
 * (confirmTotp); `secret` the confirmed one. `lastUsedStep` is the time step of the last code
 * accepted: a code of that step or an earlier one is refused (no replay). `pendingGuesses` counts
 * the codes presented for the pending secret (capped, so a stale session cannot guess it; enrolling
 * again starts at 0).
 */
export const totpCredentials = pgTable('totp_credentials', {
  userId: uuid('user_id')
    .primaryKey()
    .references(() => users.id, { onDelete: 'cascade' }),
  secret: text('secret'),
  confirmedAt: timestamp('confirmed_at', { withTimezone: true }),
  lastUsedStep: bigint('last_used_step', { mode: 'number' }),
  pendingSecret: text('pending_secret'),
  pendingSince: timestamp('pending_since', { withTimezone: true }),
  pendingGuesses: integer('pending_guesses').notNull().default(0),
});

/** Single-use recovery codes: SHA-256 of each (they are random, 80 bits), spent by setting `usedAt`. */
export const recoveryCodes = pgTable(
  'recovery_codes',
  {
    id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    codeHash: text('code_hash').notNull(),
    createdAt: createdAt(),
    usedAt: timestamp('used_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('recovery_codes_user_code').on(t.userId, t.codeHash)],
);
export type TotpCredentialRow = typeof totpCredentials.$inferSelect;

/**
 * A sign-in halfway: the first factor passed, a second factor is due. The challenge is a split
 * token (`<id>.<secret>`, only the secret's SHA-256 kept), single-use, short-lived, bound to the
 * user and to the first step it was issued after, and dead after `MAX_CHALLENGE_GUESSES` codes.
 * `firstFactor` is that step's RFC 8176 amr: `pwd` binds the password (`passwordHashDigest`:
 * SHA-256 of the stored hash then; a changed password kills it), `fed` the provider identity
 * that signed in (`identityId`; unlinking it deletes the challenge).
 */
export const signInChallenges = pgTable(
  'sign_in_challenges',
  {
    id: text('id').primaryKey(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    secretHash: text('secret_hash').notNull(),
    firstFactor: text('first_factor', { enum: ['pwd', 'fed'] }).notNull().default('pwd'),
    passwordHashDigest: text('password_hash_digest'),
    identityId: uuid('identity_id').references(() => identities.id, { onDelete: 'cascade' }),
    createdAt: createdAt(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    /** Codes checked against it so far (each counted before it is checked). */
    guesses: integer('guesses').notNull().default(0),
    spentAt: timestamp('spent_at', { withTimezone: true }),
  },
  (t) => [
    index('sign_in_challenges_expires_at_idx').on(t.expiresAt),
    // Exactly the binding of its first factor: a challenge never passes unbound.
    check(
      'sign_in_challenges_binding',
      sql`(${t.firstFactor} = 'pwd' AND ${t.passwordHashDigest} IS NOT NULL AND ${t.identityId} IS NULL) OR (${t.firstFactor} = 'fed' AND ${t.identityId} IS NOT NULL AND ${t.passwordHashDigest} IS NULL)`,
    ),
  ],
);

/**
 * WebAuthn credentials (passkeys). `credentialId` and `publicKey` (COSE) as base64url; the
 * signature counter and the backup flags as the authenticator last reported them.
 */
export const passkeys = pgTable(
  'passkeys',
  {
    id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    credentialId: text('credential_id').notNull(),
    publicKey: text('public_key').notNull(),
    counter: bigint('counter', { mode: 'number' }).notNull().default(0),
    transports: text('transports').array().notNull().default(sql`'{}'::text[]`),
    backupEligible: boolean('backup_eligible').notNull(),
    backedUp: boolean('backed_up').notNull(),
    name: text('name'),
    createdAt: createdAt(),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('passkeys_credential_id').on(t.credentialId), index('passkeys_user_id_idx').on(t.userId)],
);
export type PasskeyRow = typeof passkeys.$inferSelect;

/**
 * WebAuthn challenges handed out and not yet answered, kept as SHA-256 of the challenge (32
 * random bytes: plain SHA-256 suffices, and the challenge itself is never stored). Single-use
 * (taken by DELETE … RETURNING), short-lived, and bound to what they were issued for: a user
 * (registration, reauthentication, a passwordless sign-in for an email), the second step of a
 * sign-in (`signInChallengeId`), or nothing (a discoverable sign-in).
 */
export const webauthnChallenges = pgTable(
  'webauthn_challenges',
  {
    challengeHash: text('challenge_hash').primaryKey(),
    purpose: text('purpose', { enum: ['registration', 'sign_in', 'second_factor', 'reauthentication'] }).notNull(),
    userId: uuid('user_id').references(() => users.id, { onDelete: 'cascade' }),
    signInChallengeId: text('sign_in_challenge_id').references(() => signInChallenges.id, { onDelete: 'cascade' }),
    createdAt: createdAt(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  },
  (t) => [index('webauthn_challenges_expires_at_idx').on(t.expiresAt)],
);
