import type { AbuseGuard } from '../abuse/guard.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Database } from '../db/client.js';
import { AccountDisabledError, EmailNotVerifiedError, InvalidCredentialsError } from '../errors.js';
import { findUserByEmail, lockUser, recordSignIn } from '../accounts/accounts.js';
import type { Passwords } from './passwords.js';
import type { AuthService, AuthTokens } from '../sessions/session-service.js';
import { startSession, type SessionPolicy } from '../sessions/sessions.js';
import type { RequestInfo } from '../request-info.js';

export interface SignInDeps {
  db: Database;
  clock: Clock;
  audit: AuditLog;
  passwords: Passwords;
  /** The account lockout: every password check is counted before it runs. */
  guard: Pick<AbuseGuard, 'reserveSignIn'>;
  auth: Pick<AuthService, 'issueTokens'>;
  sessionPolicy: SessionPolicy;
  /** REQUIRE_EMAIL_VERIFICATION: refuse sign-in (after the password check) until the email is verified. */
  requireEmailVerification?: boolean;
}

/** How a checked sign-in ended: the lockout counts a wrong password, clears on success, and forgets the rest. */
type Verdict =
  | { kind: 'wrong_password'; userId: string | null }
  | { kind: 'refused'; error: Error }
  | { kind: 'signed_in'; tokens: AuthTokens };

/** Password sign-in: the lockout, the password check, and the session it opens. */
export function createSignIn(deps: SignInDeps) {
  const { db, clock, audit, passwords, guard, auth, sessionPolicy, requireEmailVerification = false } = deps;

  async function check(email: string, password: string, request: RequestInfo): Promise<Verdict> {
    const failure = (reason: string, userId: string | null = null) =>
      audit.record({ type: 'login_failure', userId, request, detail: { reason } });
    const user = await findUserByEmail(db, email);
    if (!user) {
      await passwords.verifyAgainstDummy(password);
      await failure('unknown_email');
      return { kind: 'wrong_password', userId: null };
    }
    const verified = await passwords.verify(user.passwordHash, password);
    if (!verified.ok) {
      await failure('wrong_password', user.id);
      return { kind: 'wrong_password', userId: user.id };
    }
    if (!user.active) {
      await failure('account_disabled', user.id);
      return { kind: 'refused', error: new AccountDisabledError() };
    }
    if (requireEmailVerification && !user.emailVerified) {
      await failure('email_not_verified', user.id);
      return { kind: 'refused', error: new EmailNotVerifiedError() };
    }
    // A re-hash is computed outside the lock and replaces only the hash it verified.
    const rehashed = verified.needsRehash ? await passwords.hash(password) : null;
    const now = clock.now();
    const opened = await db.transaction(async (tx) => {
      // argon2 took a while: the session opens only if the password checked is still the
      // stored one, the account still active, and its cut-off (log out everywhere) not after now.
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
      await failure('account_disabled', user.id);
      return { kind: 'refused', error: new AccountDisabledError() };
    }
    if (opened.kind === 'stale') {
      await failure('credentials_changed', user.id);
      return { kind: 'wrong_password', userId: user.id };
    }
    return { kind: 'signed_in', tokens: await auth.issueTokens(opened.user, opened.session, opened.refreshToken, now) };
  }

  return {
    /**
     * Checks a password and opens a new session. The email comes normalized and the password
     * non-empty and within the policy's length (graphql/arguments.ts parses them at the edge). The attempt is counted by the lockout before
     * the password is checked (RateLimitedError, checking nothing, while the email is locked).
     */
    async login(credentials: { email: string; password: string }, request: RequestInfo): Promise<AuthTokens> {
      const { email, password } = credentials;
      const attempt = await guard.reserveSignIn(email, request);
      let verdict: Verdict;
      try {
        verdict = await check(email, password, request);
      } catch (err) {
        await attempt.release(); // no verdict (argon2 overload, a database fault): not a failure
        throw err;
      }
      switch (verdict.kind) {
        case 'wrong_password':
          await attempt.failed();
          throw new InvalidCredentialsError();
        case 'refused':
          await attempt.release();
          throw verdict.error;
        case 'signed_in':
          await attempt.succeeded();
          return verdict.tokens;
      }
    },
  };
}

export type SignIn = ReturnType<typeof createSignIn>;
