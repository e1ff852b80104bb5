import type { AbuseGuard } from '../abuse/guard.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Database, Tx } from '../db/client.js';
import { refusableTransaction, type Refuse } from '../db/refusable-transaction.js';
import type { UserRow } from '../db/schema.js';
import {
  AccountDisabledError,
  AuthError,
  EmailNotVerifiedError,
  InputError,
  InvalidCredentialsError,
  InvalidSecondFactorError,
} from '../errors.js';
import { findUserByEmail, findUserById, lockUser, recordSignIn, storeRehash } from '../accounts/accounts.js';
import type { Passwords } from './passwords.js';
import type { RefusedCode, SecondFactorMethod, SecondFactors } from './second-factors.js';
import {
  CHALLENGE_TTL_SECONDS,
  issueChallenge,
  passwordStepDigest,
  reserveGuess,
  returnGuess,
  SecondFactorRequired,
  spendChallenge,
} from './sign-in-challenges.js';
import type { AuthService, AuthTokens } from '../sessions/session-service.js';
import { startSession, type SessionPolicy } from '../sessions/sessions.js';
import type { RequestInfo } from '../request-info.js';

/**
 * Checks a passkey assertion of a user (recording its use): the amr values it earns (`hwk`,
 * plus `user` with user verification), or null (audited by the check). `signInChallengeId`:
 * the assertion must answer options issued for that sign-in challenge.
 */
export type PasskeyCheck = (userId: string, response: unknown, request: RequestInfo, signInChallengeId?: string) => Promise<{ amr: string[] } | null>;

export interface SignInDeps {
  db: Database;
  clock: Clock;
  audit: AuditLog;
  passwords: Passwords;
  /** The account lockout: every password check (and every second-factor code) is counted before it runs. */
  guard: Pick<AbuseGuard, 'reserveSignIn'>;
  auth: Pick<AuthService, 'issueTokens'>;
  sessionPolicy: SessionPolicy;
  /** The user's second factors: a sign-in of a user with one stops at SecondFactorRequired. */
  secondFactors: Pick<SecondFactors, 'methodsOf' | 'spendCode' | 'codeRefused'>;
  /** Checks a passkey assertion of the user, answering this sign-in challenge's passkeyOptions; without it no passkey passes. */
  checkPasskey?: PasskeyCheck | undefined;
  /** REQUIRE_EMAIL_VERIFICATION: refuse sign-in (after the password check) until the email is verified. */
  requireEmailVerification?: boolean;
}

/** How a checked sign-in ended: the lockout counts a wrong password, clears on success, and forgets the rest. */
type Verdict =
  | { kind: 'wrong_password'; userId: string | null }
  | { kind: 'refused'; error: Error }
  | { kind: 'signed_in'; tokens: AuthTokens };

/**
 * Why opening a session after the checks did not happen, or the code that did not pass (nothing
 * the attempt wrote stays: no code, no challenge spent).
 */
type NotOpened = 'stale' | 'disabled' | 'spent' | 'factor_due' | RefusedCode;

/** A second factor passed in the session's transaction: the amr values it earns, and which it was. */
interface Passed {
  ok: true;
  amr: string[];
  method: SecondFactorMethod;
}

/** Password sign-in, and its second step when the user has a second factor. */
export function createSignIn(deps: SignInDeps) {
  const { db, clock, audit, passwords, guard, auth, sessionPolicy, secondFactors, checkPasskey, requireEmailVerification = false } = deps;

  /**
   * Opens a session for a user whose credentials were checked against `checkedHash`, in one
   * transaction: only if that is still the stored hash, the account still active, and its
   * cut-off (log out everywhere) not after now. `secondFactor` (a code spent) and `spend` (a
   * challenge spent once) run in it too, after those checks: when anything refuses, the whole
   * transaction rolls back, so a code is never spent for a session that did not open.
   * `passwordOnly`: only if the user has no second factor, checked under the row lock, which
   * every change of factors takes (a factor turned on while the password was checked wins).
   */
  async function openSession(
    user: UserRow,
    options: {
      request: RequestInfo;
      now: Date;
      amr: string[];
      isCurrent: (stored: UserRow) => boolean;
      /** When the first step was taken (a challenge's issue): a cut-off after it ("log out everywhere") kills it. */
      firstStepAt?: Date;
      passwordOnly?: boolean;
      rehashed?: string | null;
      secondFactor?: (tx: Tx) => Promise<Passed | RefusedCode>;
      spend?: (tx: Tx) => Promise<boolean>;
      detail?: Record<string, unknown>;
    },
  ): Promise<{ ok: true; tokens: AuthTokens } | { ok: false; reason: NotOpened }> {
    const { request, now } = options;
    const opened = await refusableTransaction(db, async (tx, refuse: Refuse<NotOpened>) => {
      const current = await lockUser(tx, user.id);
      if (!current || !options.isCurrent(current)) return refuse('stale');
      if (!current.active) return refuse('disabled');
      if (current.tokensValidAfter && current.tokensValidAfter > (options.firstStepAt ?? now)) return refuse('stale');
      if (options.passwordOnly && (await secondFactors.methodsOf(user.id, tx)).length > 0) return refuse('factor_due');
      const passed = options.secondFactor ? await options.secondFactor(tx) : undefined;
      if (passed && !passed.ok) return refuse(passed);
      if (options.spend && !(await options.spend(tx))) return refuse('spent');
      const signedIn = await recordSignIn(tx, user.id, { now, passwordHash: options.rehashed ?? null });
      const amr = [...options.amr, ...(passed?.amr ?? [])];
      const started = await startSession(tx, { userId: user.id, request, now, policy: sessionPolicy, amr });
      const detail = { sessionId: started.session.id, ...(passed && { secondFactor: passed.method }), ...options.detail };
      await audit.record({ type: 'login_success', userId: user.id, request, detail }, tx);
      return { user: signedIn, ...started };
    });
    if (!opened.ok) return opened;
    const { user: signedIn, session, refreshToken } = opened.value;
    return { ok: true, tokens: await auth.issueTokens(signedIn, session, refreshToken, now) };
  }

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
    // An account without a password (made through a provider) never verifies one.
    if (!verified.ok || user.passwordHash === null) {
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
    const { passwordHash } = user;
    // A re-hash is computed outside the lock and replaces only the hash it verified.
    const rehashed = verified.needsRehash ? await passwords.hash(password) : null;
    // No tokens yet: a challenge bound to this user and to the hash the password matched. The
    // password is known only at this step, so an outdated hash is replaced here (the second step
    // never sees the password), and the challenge bound to the hash then stored.
    const challenge = async (): Promise<Verdict> => {
      const methods = await secondFactors.methodsOf(user.id);
      const stored = rehashed && (await db.transaction((tx) => storeRehash(tx, user.id, passwordHash, rehashed))) ? rehashed : passwordHash;
      const firstStep = { factor: 'pwd', passwordHash: stored } as const;
      const issued = await issueChallenge(db, { userId: user.id, firstStep, now: clock.now() });
      return { kind: 'refused', error: new SecondFactorRequired(issued.challenge, methods, CHALLENGE_TTL_SECONDS) };
    };
    // Whether the user has a factor is asked once, under the lock where it is decided: a user
    // with one gets the challenge (the transaction rolled back, nothing written).
    const opened = await openSession(user, {
      request,
      now: clock.now(),
      amr: ['pwd'],
      passwordOnly: true,
      rehashed,
      // argon2 took a while: the password checked must still be the stored one.
      isCurrent: (stored) => stored.passwordHash === user.passwordHash,
    });
    if (opened.ok) return { kind: 'signed_in', tokens: opened.tokens };
    if (opened.reason === 'factor_due') return challenge();
    if (opened.reason === 'disabled') {
      await failure('account_disabled', user.id);
      return { kind: 'refused', error: new AccountDisabledError() };
    }
    await failure('credentials_changed', user.id);
    return { kind: 'wrong_password', userId: user.id };
  }

  return {
    /**
     * Checks a password and opens a new session, or, when the user has a second factor, answers
     * SecondFactorRequired (thrown, carried as a union member) with a challenge and no tokens.
     * The email comes normalized and the password non-empty and within the policy's length
     * (graphql/arguments.ts parses them at the edge). The attempt is counted by the lockout
     * before the password is checked (RateLimitedError, checking nothing, while the email is
     * locked); a right password with a factor due is taken back, not counted as a success:
     * only a completed sign-in clears the count.
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

    /**
     * Finishes a sign-in that answered SecondFactorRequired (after a password, or a provider's
     * sign-in), with a code (TOTP or recovery code) or, later, a passkey. The challenge counts
     * each code before it is checked and dies after MAX_CHALLENGE_GUESSES; each wrong code also
     * counts toward the account lockout like a wrong password. A session opens (amr: the first
     * factor, then otp) only if the first step still holds: the password is still the one the
     * challenge was issued after, or the provider identity is still linked.
     */
    async completeSignIn(
      input: { challenge: string; code?: string | null | undefined; passkey?: unknown },
      request: RequestInfo,
    ): Promise<AuthTokens> {
      const given = (['code', 'passkey'] as const).filter((name) => input[name] !== undefined && input[name] !== null);
      if (given.length !== 1) throw new InputError(given[1] ?? 'code', 'Give exactly one of code or passkey.');
      const now = clock.now();
      const failure = (reason: string, userId?: string) =>
        audit.record({ type: 'login_failure', userId, request, detail: { reason, step: 'second_factor' } });
      const guess = await reserveGuess(db, input.challenge, now);
      if (!guess.ok) {
        await failure(`challenge_${guess.reason}`, guess.userId);
        throw new InvalidSecondFactorError(guess.reason);
      }
      const user = await findUserById(db, guess.userId);
      if (!user) throw new InvalidSecondFactorError('unknown');
      const attempt = await guard.reserveSignIn(user.email, request);
      try {
        // A passkey assertion is checked first (its challenge is spent whatever follows); a code
        // is spent in the session's transaction, so only if the session opens.
        let secondFactor: (tx: Tx) => Promise<Passed | RefusedCode>;
        if (given[0] === 'passkey') {
          const ok = await checkPasskey?.(user.id, input.passkey, request, guess.id);
          if (!ok) {
            await attempt.failed();
            throw new InvalidSecondFactorError('wrong_passkey');
          }
          secondFactor = async () => ({ ok: true, amr: ok.amr, method: 'PASSKEY' });
        } else {
          secondFactor = async (tx) => {
            const verdict = await secondFactors.spendCode(tx, user.id, input.code!, now);
            return verdict.ok ? { ...verdict, amr: [verdict.amr] } : verdict;
          };
        }
        const { binding } = guess;
        const opened = await openSession(user, {
          request,
          now,
          amr: [binding.factor],
          firstStepAt: guess.issuedAt,
          isCurrent: (stored) =>
            binding.factor === 'fed' ||
            (stored.passwordHash !== null && passwordStepDigest(stored.passwordHash) === binding.passwordHashDigest),
          secondFactor,
          // A federated challenge is bound to its identity by the foreign key: unlinking the
          // identity (under the user's lock, as here) deletes the challenge, so it is not spent.
          spend: (tx) => spendChallenge(tx, guess.id, now),
          ...(binding.factor === 'fed' && { detail: { method: 'social', identityId: binding.identityId } }),
        });
        if (opened.ok) {
          await attempt.succeeded();
          return opened.tokens;
        }
        if (typeof opened.reason !== 'string') {
          const refused = opened.reason;
          await secondFactors.codeRefused(user.id, refused, request, 'sign_in');
          if (refused.reason === 'unverifiable') {
            // The server cannot open the user's TOTP secret (the operator changed its key): no app
            // code can pass, so guessing gains nothing; counting it would lock the owner out and
            // burn the challenge they need for a recovery code.
            await returnGuess(db, guess.id);
            await attempt.release();
            throw new InvalidSecondFactorError('unverifiable');
          }
          await attempt.failed();
          throw new InvalidSecondFactorError('wrong_code');
        }
        await attempt.release();
        if (opened.reason === 'disabled') {
          // Told as login tells it after the right password: the challenge proves that step passed.
          await failure('account_disabled', user.id);
          throw new AccountDisabledError();
        }
        await failure(`challenge_${opened.reason}`, user.id);
        throw new InvalidSecondFactorError(opened.reason);
      } catch (err) {
        if (!(err instanceof AuthError)) await attempt.release(); // no verdict: not a failure
        throw err;
      }
    },
  };
}

export type SignIn = ReturnType<typeof createSignIn>;
