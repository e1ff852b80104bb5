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
import { findUserById, insertUser, recordSignIn, toAccount, type Account } from './accounts.js';
import { normalizeEmail, parseEmail } from './email.js';
import { assertPasswordPolicy, MAX_PASSWORD_LENGTH } from './password-policy.js';
import type { Passwords } from './passwords.js';
import type { RequestInfo } from '../request-info.js';
import { wholeSecondsLeft } from '../time.js';
import type { RevocationList } from './revocation.js';
import {
  findSessionOfRefreshToken,
  revokeSession,
  rotateRefreshToken,
  signOutEverywhere,
  startSession,
  type IssuedRefreshToken,
  type SessionPolicy,
} from './sessions.js';

/** What a successful sign-in, registration or refresh hands the client. */
export interface AuthTokens {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  refreshExpiresIn: number;
  user: Account;
}

export interface AuthServiceDeps {
  db: Database;
  clock: Clock;
  audit: AuditLog;
  passwords: Passwords;
  accessTokens: AccessTokenCodec;
  revocations: RevocationList;
  sessionPolicy: SessionPolicy;
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
async function prepareAccount(input: NewAccount, passwords: Passwords) {
  const email = parseEmail(input.email);
  const name = parseName(input.name);
  await assertPasswordPolicy(input.password, relatedInputs(email, name));
  return { email, name, passwordHash: await passwords.hash(input.password) };
}

/** The sign-up, refresh and sign-out flows, and the tokens every sign-in hands out. */
export function createAuthService(deps: AuthServiceDeps) {
  const { db, clock, audit, passwords, accessTokens, revocations, sessionPolicy } = deps;

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
      expiresIn: wholeSecondsLeft(access.expiresAt, now),
      refreshExpiresIn: wholeSecondsLeft(refreshToken.expiresAt, now),
      user: toAccount(user),
    };
  }

  return {
    /** Tokens for a session another flow has just opened (password change, password reset). */
    issueTokens: tokensFor,

    /** Creates an account with role `user` and signs it in. */
    async register(input: NewAccount, request: RequestInfo) {
      const account = await prepareAccount(input, passwords);
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
    async createUser(input: NewAccount): Promise<Account> {
      const account = await prepareAccount(input, passwords);
      return db.transaction(async (tx) => {
        const user = await insertUser(tx, { ...account, now: clock.now() });
        await audit.record({ type: 'register', userId: user.id, detail: { via: 'cli' } }, tx);
        return toAccount(user);
      });
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
