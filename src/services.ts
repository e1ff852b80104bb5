import { createAbuseGuard } from './abuse/guard.js';
import { createLockout } from './abuse/lockout.js';
import { createRateLimiter } from './abuse/rate-limiter.js';
import { createAuditLog } from './audit/audit-log.js';
import { findUserByEmail } from './accounts/accounts.js';
import { createAccountRecovery } from './accounts/account-recovery.js';
import { createPasswordChange } from './credentials/password-change.js';
import { createSessionAdmin } from './sessions/session-admin.js';
import { createBackgroundTasks } from './background-tasks.js';
import { createMailer } from './mail/mailer.js';
import { defaultPublicUrl } from './mail/templates.js';
import { createPasswords } from './credentials/passwords.js';
import { WorkGate } from './abuse/work-gate.js';
import { createMetrics } from './metrics.js';
import { createAccessTokenCodec } from './tokens/access-tokens.js';
import { createRevocationList } from './sessions/revocation.js';
import { createAuthService } from './sessions/session-service.js';
import { createRefreshCookies, refreshCookieSettings } from './sessions/refresh-cookie.js';
import { createRegistration } from './accounts/registration.js';
import { createSignIn } from './credentials/sign-in.js';
import { createReauthentication } from './credentials/reauthentication.js';
import { createSecondFactors } from './credentials/second-factors.js';
import { createTotpStore } from './credentials/totp.js';
import { createWebauthn, relyingPartyOf } from './credentials/webauthn.js';
import { createPasskeyRegistration } from './credentials/passkey-registration.js';
import { createPasskeySignIn } from './credentials/passkey-sign-in.js';
import { hkdfSync } from 'node:crypto';
import { createKeyEncryption } from './tokens/key-encryption.js';
import { createRoleAdmin } from './authz/role-admin.js';
import { createUserDirectory } from './authz/user-directory.js';
import { createAuditQuery } from './audit/audit-query.js';
import type { SigningKeys } from './tokens/signing-keys.js';
import type { Clock } from './clock.js';
import type { Config } from './config.js';
import type { DatabaseHandle } from './db/client.js';
import { createChangeFeed } from './db/change-feed.js';
import { createAuthorizationMemory } from './authz/authorization-memory.js';
import { createViewerEvents } from './sessions/viewer-events.js';
import type { Logger } from './logger.js';
import { createProviderClients } from './social/provider-clients.js';
import { createSocialSignIn } from './social/social-sign-in.js';

/** Long-lived pieces the per-request context is built from. */
export type AppServices = ReturnType<typeof createServices>;

/** Wires the long-lived services from configuration, keys and a database. */
export function createServices(options: {
  config: Config;
  /** The database; its LISTEN feeds this instance's memory of users, sessions and revocations. */
  database: Pick<DatabaseHandle, 'db' | 'listen'>;
  keys: SigningKeys;
  clock: Clock;
  logger: Logger;
}) {
  const { config, database, keys, clock, logger } = options;
  const { db } = database;
  const publicUrl = config.publicUrl ?? defaultPublicUrl(config);
  // Refuses production without RP_ID and RP_ORIGINS.
  const webauthn = createWebauthn(relyingPartyOf(config, publicUrl));
  const accessTokens = createAccessTokenCodec(keys.ring, {
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    ttlSeconds: config.accessTokenTtl,
  });
  // A registry per app (never prom-client's global one): a process may hold several apps.
  const metrics = createMetrics();
  metrics.watchListener('signing_keys', () => keys.listening());
  // Started by whoever opens the app (start()), once every subscriber is in place.
  const changes = createChangeFeed({ database, db, logger });
  const memory = createAuthorizationMemory({ db, clock, feed: changes });
  const viewerEvents = createViewerEvents({ feed: changes, clock, maxStreams: config.viewerEventsMaxStreams });
  metrics.watchListener('changes', () => changes.live());
  const revocations = createRevocationList(db, memory, (source) => metrics.countRevocationCheck(source));
  const audit = createAuditLog({ db, clock, logger, retentionDays: config.auditRetentionDays, metrics });
  // One gate bounds all of this app's argon2 work (hashes, verifications, the dummy check).
  const argon2Gate = new WorkGate({
    ...config.argon2,
    onWait: (seconds) => metrics.observeArgon2Wait(seconds),
    onRefused: () => metrics.countArgon2Refusal(),
  });
  metrics.watchArgon2Queue(() => argon2Gate.queueLength);
  const passwords = createPasswords(argon2Gate);
  const rateLimiter = createRateLimiter({ db, clock, limits: config.rateLimits.limits });
  const lockout = createLockout({
    db,
    clock,
    policy: {
      failures: config.rateLimits.limits.LOGIN_ACCOUNT,
      baseSeconds: config.rateLimits.lockoutBase,
      maxSeconds: config.rateLimits.lockoutMax,
    },
  });
  const guard = createAbuseGuard({
    enabled: config.rateLimits.enabled,
    limiter: rateLimiter,
    lockout,
    audit,
    db,
    metrics,
    userIdOf: async (email, executor) => (await findUserByEmail(executor, email))?.id ?? null,
  });
  const sessionPolicy = {
    refreshTokenTtl: config.refreshTokenTtl,
    sessionMaxAge: config.sessionMaxAge,
    refreshReuseGrace: config.refreshReuseGrace,
    successorKey: keys.successorKey,
  };
  const auth = createAuthService({
    db,
    clock,
    audit,
    accessTokens,
    revocations,
    sessionPolicy,
    secondFactorRoles: config.stepUp.secondFactorRoles,
  });
  // TOTP secrets are sealed with the key that seals the signing keys (SigningKeys.secretsKey).
  const totp = createTotpStore({ encryption: createKeyEncryption(keys.secretsKey), issuer: config.jwt.issuer, logger });
  const secondFactors = createSecondFactors({ db, clock, audit, totp });
  const passkeyRegistration = createPasskeyRegistration({ db, clock, audit, webauthn, secondFactors });
  const passkeySignIn = createPasskeySignIn({
    db,
    clock,
    audit,
    webauthn,
    auth,
    sessionPolicy,
    // Its own key, derived from the secrets key: decoy ids must not be computable by anyone else.
    decoyKey: Buffer.from(hkdfSync('sha256', keys.secretsKey, Buffer.alloc(0), 'authgraph passkey decoys', 32)),
  });
  const registration = createRegistration({ db, clock, audit, passwords, auth, sessionPolicy });
  const signIn = createSignIn({
    db,
    clock,
    audit,
    passwords,
    guard,
    auth,
    sessionPolicy,
    secondFactors,
    checkPasskey: passkeySignIn.checkAssertion,
    requireEmailVerification: config.requireEmailVerification,
  });
  const reauthentication = createReauthentication({
    db,
    clock,
    audit,
    passwords,
    guard,
    auth,
    secondFactors,
    checkPasskey: (userId, response, request) => passkeySignIn.checkAssertion(userId, response, request),
  });
  // Account lifecycle: sessions, password change, the emailed flows.
  const tasks = createBackgroundTasks(logger);
  const sessionAdmin = createSessionAdmin({ db, clock, audit });
  const passwordChange = createPasswordChange({ db, clock, audit, passwords, auth, sessionPolicy });
  const accountRecovery = createAccountRecovery({
    db,
    clock,
    audit,
    passwords,
    auth,
    sessionPolicy,
    tasks,
    secondFactors,
    mailer: createMailer(config, logger),
    publicUrl,
    emailVerificationTtl: config.emailVerificationTtl,
    passwordResetTtl: config.passwordResetTtl,
  });
  const socialSignIn = createSocialSignIn({
    db,
    clock,
    audit,
    logger,
    auth,
    sessionPolicy,
    config: config.social,
    clients: createProviderClients(config.social.providers, logger),
    secondFactors,
  });
  const roleAdmin = createRoleAdmin({ db, clock, audit });
  const directory = createUserDirectory({ db, clock, memory });
  const auditQuery = createAuditQuery(db);
  return {
    db,
    clock,
    logger,
    passwords,
    audit,
    guard,
    rateLimiter,
    lockout,
    auth,
    registration,
    signIn,
    /** Sign-in through OpenID Connect providers and GitHub, and the identities linked to accounts. */
    socialSignIn,
    reauthentication,
    secondFactors,
    /** WebAuthn ceremonies for this relying party (RP_ID, RP_ORIGINS). */
    webauthn,
    /** Adding and removing passkeys. */
    passkeyRegistration,
    /** Passwordless sign-in with a passkey, and passkey assertions as a second factor. */
    passkeySignIn,
    accessTokens,
    revocations,
    roleAdmin,
    directory,
    auditQuery,
    /** Work that outlives its request (mails sent after answering); awaited at shutdown. */
    tasks,
    sessionAdmin,
    passwordChange,
    accountRecovery,
    /** The access-token keys: the ring, and the stored set's manager (null under HS*). */
    signingKeys: keys,
    /** The change feed that keeps this instance's memory exact (started and closed by the app's owner). */
    changes,
    /** What this instance holds in memory for requests (accounts, access, sessions, revoked jtis). */
    memory,
    /** The open viewerEvents streams of this instance, fed by `changes`. */
    viewerEvents,
    /** This app's Prometheus metrics (served by GET /metrics when METRICS=true). */
    metrics,
    trustProxy: config.trustProxy,
    /** REAUTH_MAX_AGE and REQUIRE_SECOND_FACTOR_FOR_ROLES, for the step-up scopes. */
    stepUp: config.stepUp,
    /** Where refresh tokens travel (REFRESH_TOKEN_TRANSPORT), and each request's refresh cookie. */
    refreshCookies: createRefreshCookies(refreshCookieSettings(config), (token) => auth.liveSessionOf(token)),
  };
}
