import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Database } from '../db/client.js';
import type { UserRow } from '../db/schema.js';
import {
  AccountDisabledError,
  EmailNotVerifiedError,
  InputError,
  InvalidCredentialsError,
  InvalidRefreshTokenError,
} from '../errors.js';
import type { AccessClaims, AccessTokenCodec } from './access-tokens.js';
import { loadAccess } from '../authz/permissions.js';
import { findUserByEmail, findUserById, insertUser, lockUser, recordSignIn } from './accounts.js';
import { normalizeEmail, parseEmail } from './email.js';
import { assertPasswordPolicy, MAX_PASSWORD_LENGTH } from './password-policy.js';
import { hashPassword, verifyAgainstDummy, verifyPassword } from './passwords.js';
import type { RevocationList } from './revocation.js';
import {
  findSessionOfRefreshToken,
  revokeSession,
  rotateRefreshToken,
  signOutEverywhere,
  startSession,
  type IssuedRefreshToken,
  type RequestInfo,
  type SessionPolicy,
} from './sessions.js';

/** What a successful sign-in, registration or refresh hands the client. */
export interface AuthTokens {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  refreshExpiresIn: number;
  user: UserRow;
}

export interface AuthServiceDeps {
  db: Database;
  clock: Clock;
  audit: AuditLog;
  accessTokens: AccessTokenCodec;
  revocations: RevocationList;
  sessionPolicy: SessionPolicy;
  /** REQUIRE_EMAIL_VERIFICATION: refuse sign-in (after the password check) until the email is verified. */
  requireEmailVerification?: boolean;
}

const MAX_NAME_LENGTH = 100;

function parseName(raw: string | null | undefined): string | null {
  const name = raw?.trim().normalize('NFC') ?? '';
  if (name === '') return null;
  if ([...name].length > MAX_NAME_LENGTH) {
    throw new InputError('name', `Names have at most ${MAX_NAME_LENGTH} characters.`);
  }
  return name;
}

export interface NewAccount {
  email: string;
  password: string;
  name?: string | null | undefined;
}

/**
 * What a password must not be built from: zxcvbn matches each entry as a whole word, so the
 * email's local part and the name's words are listed on their own too.
 */
export function relatedInputs(email: string, name: string | null): string[] {
  const local = email.split('@')[0] ?? '';
  return [email, local, ...local.split(/[._+-]+/), ...(name ? [name, ...name.split(/\s+/)] : [])].filter(
    (part) => part.length >= 3,
  );
}

/** Validates a new account's fields (the same rules on every path) and hashes its password. */
async function prepareAccount(input: NewAccount) {
  const email = parseEmail(input.email);
  const name = parseName(input.name);
  await assertPasswordPolicy(input.password, relatedInputs(email, name));
  return { email, name, passwordHash: await hashPassword(input.password) };
}

const secondsUntil = (date: Date, now: Date) => Math.max(0, Math.floor((date.getTime() - now.getTime()) / 1000));

/** The sign-up, sign-in, refresh and sign-out flows. Resolvers call this and nothing below it. */
export function createAuthService(deps: AuthServiceDeps) {
  const { db, clock, audit, accessTokens, revocations, sessionPolicy, requireEmailVerification = false } = deps;

  async function tokensFor(
    user: UserRow,
    sessionId: string,
    refreshToken: IssuedRefreshToken,
    now: Date,
  ): Promise<AuthTokens> {
    const { roles } = await loadAccess(db, user.id);
    const access = await accessTokens.sign({ userId: user.id, sessionId, roles }, now);
    return {
      accessToken: access.token,
      refreshToken: refreshToken.token,
      expiresIn: secondsUntil(access.expiresAt, now),
      refreshExpiresIn: secondsUntil(refreshToken.expiresAt, now),
      user,
    };
  }

  return {
    /** Tokens for a session another flow has just opened (password change, password reset). */
    issueTokens: tokensFor,

    /** Creates an account with role `user` and signs it in. */
    async register(input: NewAccount, request: RequestInfo) {
      const account = await prepareAccount(input);
      const now = clock.now();
      const { user, session, refreshToken } = await db.transaction(async (tx) => {
        const created = await insertUser(tx, { ...account, now });
        const user = await recordSignIn(tx, created.id, { now });
        const started = await startSession(tx, { userId: user.id, request, now, policy: sessionPolicy });
        await audit.record({ type: 'register', userId: user.id, request, detail: { sessionId: started.session.id } }, tx);
        return { user, ...started };
      });
      return tokensFor(user, session.id, refreshToken, now);
    },

    /** Creates an account with role `user` without signing in (the operator's CLI). */
    async createUser(input: NewAccount): Promise<UserRow> {
      const account = await prepareAccount(input);
      return db.transaction(async (tx) => {
        const user = await insertUser(tx, { ...account, now: clock.now() });
        await audit.record({ type: 'register', userId: user.id, detail: { via: 'cli' } }, tx);
        return user;
      });
    },

    /** Checks a password and opens a new session. */
    async login(input: { email: string; password: string }, request: RequestInfo) {
      const email = normalizeEmail(input.email);
      if (email === '') throw new InputError('email', 'Enter your email address.');
      if (input.password === '') throw new InputError('password', 'Enter your password.');
      if ([...input.password].length > MAX_PASSWORD_LENGTH) {
        throw new InputError('password', `Passwords have at most ${MAX_PASSWORD_LENGTH} characters.`);
      }
      const user = await findUserByEmail(db, email);
      if (!user) {
        await verifyAgainstDummy(input.password);
        await audit.record({ type: 'login_failure', request, detail: { reason: 'unknown_email' } });
        throw new InvalidCredentialsError();
      }
      const check = await verifyPassword(user.passwordHash, input.password);
      if (!check.ok) {
        await audit.record({ type: 'login_failure', userId: user.id, request, detail: { reason: 'wrong_password' } });
        throw new InvalidCredentialsError();
      }
      if (!user.active) {
        await audit.record({ type: 'login_failure', userId: user.id, request, detail: { reason: 'account_disabled' } });
        throw new AccountDisabledError();
      }
      if (requireEmailVerification && !user.emailVerified) {
        await audit.record({ type: 'login_failure', userId: user.id, request, detail: { reason: 'email_not_verified' } });
        throw new EmailNotVerifiedError();
      }
      // A re-hash is computed outside the lock and replaces only the hash it verified.
      const rehashed = check.needsRehash ? await hashPassword(input.password) : null;
      const now = clock.now();
      const opened = await db.transaction(async (tx) => {
        // argon2 took a while: the session opens only if the password checked is still the
        // stored one, the account still active, and its cut-off (log out everywhere) before now.
        const current = await lockUser(tx, user.id);
        if (current?.passwordHash !== user.passwordHash) return { kind: 'stale' } as const;
        if (!current.active) return { kind: 'disabled' } as const;
        if (current.tokensValidAfter && current.tokensValidAfter > now) return { kind: 'stale' } as const;
        const signedIn = await recordSignIn(tx, user.id, { now, passwordHash: rehashed });
        const started = await startSession(tx, { userId: user.id, request, now, policy: sessionPolicy });
        await audit.record({ type: 'login_success', userId: user.id, request, detail: { sessionId: started.session.id } }, tx);
        return { kind: 'opened', user: signedIn, ...started } as const;
      });
      if (opened.kind === 'disabled') {
        await audit.record({ type: 'login_failure', userId: user.id, request, detail: { reason: 'account_disabled' } });
        throw new AccountDisabledError();
      }
      if (opened.kind === 'stale') {
        await audit.record({ type: 'login_failure', userId: user.id, request, detail: { reason: 'credentials_changed' } });
        throw new InvalidCredentialsError();
      }
      return tokensFor(opened.user, opened.session.id, opened.refreshToken, now);
    },

    /** Rotates a refresh token; see rotateRefreshToken for the reuse rules. */
    async refresh(presented: string, request: RequestInfo) {
      const now = clock.now();
      const result = await db.transaction(async (tx) => {
        const rotation = await rotateRefreshToken(tx, presented, { now, policy: sessionPolicy });
        if (rotation.kind === 'rejected') return rotation;
        const { session } = rotation;
        if (rotation.kind === 'replayed') {
          // Recorded with the revocation it caused: a replay is never detected without a trace.
          const detail = { sessionId: session.id, sessionRevoked: true };
          await audit.record({ type: 'refresh_reuse_detected', userId: session.userId, request, detail }, tx);
          return rotation;
        }
        const user = await findUserById(tx, session.userId);
        const detail = { sessionId: session.id, retry: rotation.kind === 'reissued' };
        await audit.record({ type: 'refresh', userId: session.userId, request, detail }, tx);
        return { ...rotation, user: user! };
      });
      if (result.kind === 'rejected') throw new InvalidRefreshTokenError(result.reason);
      if (result.kind === 'replayed') throw new InvalidRefreshTokenError('replayed');
      return tokensFor(result.user, result.session.id, result.refreshToken, now);
    },

    /**
     * Revokes the caller's access token and session, the session of a presented refresh token,
     * or (everywhere) all of the user's sessions and tokens. Returns false when nothing proved
     * who the caller is; the resolver turns that into UNAUTHENTICATED.
     */
    async logout(options: {
      claims: AccessClaims | null;
      refreshToken?: string | null | undefined;
      everywhere: boolean;
      request: RequestInfo;
    }) {
      const now = clock.now();
      const { claims } = options;
      if (options.everywhere && !claims) return false;
      const tokenSession = options.refreshToken ? await findSessionOfRefreshToken(db, options.refreshToken, now) : null;
      if (!claims && !tokenSession) return false;
      await db.transaction(async (tx) => {
        if (claims) {
          await revocations.revokeAccessToken(tx, claims);
          await revokeSession(tx, claims.sid, now);
        }
        if (tokenSession) await revokeSession(tx, tokenSession.id, now);
        if (options.everywhere && claims) await signOutEverywhere(tx, claims.sub, now);
        const event = {
          type: options.everywhere ? 'logout_everywhere' : 'logout',
          userId: claims?.sub ?? tokenSession?.userId,
          request: options.request,
          detail: { sessionId: claims?.sid ?? tokenSession?.id },
        } as const;
        await audit.record(event, tx);
      });
      return true;
    },
  };
}

export type AuthService = ReturnType<typeof createAuthService>;
