import type { AbuseGuard } from '../abuse/guard.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Database } from '../db/client.js';
import { refusableTransaction, type Refuse } from '../db/refusable-transaction.js';
import { InputError, InvalidCredentialsError, InvalidSecondFactorError } from '../errors.js';
import { findUserById } from '../accounts/accounts.js';
import type { AccessClaims } from '../tokens/access-tokens.js';
import type { AuthService } from '../sessions/session-service.js';
import type { SessionRow, UserRow } from '../db/schema.js';
import { markSessionAuthenticated, reserveFactorGuess, returnFactorGuess } from '../sessions/sessions.js';
import type { RequestInfo } from '../request-info.js';
import type { Passwords } from './passwords.js';
import { MAX_PASSWORD_LENGTH } from './password-policy.js';
import type { PasskeyCheck } from './sign-in.js';
import type { RefusedCode, SecondFactors } from './second-factors.js';
import { MAX_CHALLENGE_GUESSES } from './sign-in-challenges.js';

/**
 * Wrong second-factor proofs (codes, passkey assertions) a session may give reauthenticate
 * until it passes one, whatever RATE_LIMITS says: a sign-in challenge's cap. RATE_LIMITS=off
 * turns the account lockout off, and a session lives long, so without it codes could be guessed
 * at the speed of requests; a new session needs a whole sign-in.
 */
export const MAX_REAUTHENTICATION_GUESSES = MAX_CHALLENGE_GUESSES;

/** The proof a re-authentication offers: exactly one of a password, a second-factor code, a passkey. */
export interface ReauthenticationProof {
  password?: string | null | undefined;
  code?: string | null | undefined;
  passkey?: unknown;
}

/** A re-authenticated session's new access token, carrying its new `auth_time` and `amr`. */
export interface Reauthenticated {
  accessToken: string;
  expiresIn: number;
  accessTokenExpiresAt: Date;
  authTime: Date;
  amr: string[];
}

export interface ReauthenticationDeps {
  db: Database;
  clock: Clock;
  audit: AuditLog;
  passwords: Passwords;
  /** The account lockout: a wrong password or code counts like a wrong sign-in password. */
  guard: Pick<AbuseGuard, 'reserveSignIn'>;
  auth: Pick<AuthService, 'issueAccessToken'>;
  /** Spends second-factor codes (in the re-authentication's transaction) and audits refused ones. */
  secondFactors: Pick<SecondFactors, 'spendCode' | 'codeRefused' | 'methodsOf'>;
  /** Checks a passkey assertion to reauthenticationOptions' options; without it no passkey passes. */
  checkPasskey?: PasskeyCheck | undefined;
}

/** The proof given, or InputError when there is not exactly one. */
function proofOf(proof: ReauthenticationProof) {
  const given = (['password', 'code', 'passkey'] as const).filter((name) => proof[name] !== undefined && proof[name] !== null);
  if (given.length !== 1) throw new InputError(given[1] ?? 'password', 'Give exactly one of password, code or passkey.');
  return given[0]!;
}

/** How checking a re-authentication's proof ended. */
type Outcome =
  | { kind: 'passed'; session: SessionRow; now: Date }
  | { kind: 'wrong'; refused?: RefusedCode }
  | { kind: 'unverifiable'; refused: RefusedCode }
  | { kind: 'exhausted' }
  | { kind: 'session_ended' };

/** `reauthenticate`: the signed-in user proves again who they are; their session's auth_time moves to now. */
export function createReauthentication(deps: ReauthenticationDeps) {
  const { db, clock, audit, passwords, guard, auth, secondFactors, checkPasskey } = deps;

  /**
   * Checks the proof and, when it holds, records it on the session. A second-factor proof is
   * first counted against the session (MAX_REAUTHENTICATION_GUESSES). A password or a passkey is
   * checked first; a code is spent in the transaction that records the re-authentication, so
   * only if the session is still there to record it.
   */
  async function check(
    user: UserRow,
    claims: AccessClaims,
    proof: { method: ReturnType<typeof proofOf> } & ReauthenticationProof,
    request: RequestInfo,
  ): Promise<Outcome> {
    const { method } = proof;
    const userId = user.id;
    if (method !== 'password') {
      const counted = await reserveFactorGuess(db, { sessionId: claims.sid, userId, max: MAX_REAUTHENTICATION_GUESSES });
      if (!counted) return { kind: 'exhausted' };
    }
    let earned: string[] | null = null;
    if (method === 'password') {
      const password = proof.password!;
      const ok = [...password].length <= MAX_PASSWORD_LENGTH && (await passwords.verify(user.passwordHash, password)).ok;
      if (!ok) return { kind: 'wrong' };
      earned = ['pwd'];
    } else if (method === 'passkey') {
      earned = checkPasskey ? ((await checkPasskey(userId, proof.passkey, request))?.amr ?? null) : null;
      if (!earned) return { kind: 'wrong' };
    }
    const now = clock.now();
    const marked = await refusableTransaction(db, async (tx, refuse: Refuse<Outcome>) => {
      let factors = earned ?? [];
      if (method === 'code') {
        const verdict = await secondFactors.spendCode(tx, userId, proof.code!, now);
        if (!verdict.ok) return refuse({ kind: verdict.reason === 'unverifiable' ? 'unverifiable' : 'wrong', refused: verdict });
        factors = [verdict.amr];
      }
      let session: SessionRow | null = null;
      for (const factor of factors) session = await markSessionAuthenticated(tx, { sessionId: claims.sid, userId, factor, now });
      // Revoked or ended since the access token was checked: nothing to re-authenticate (a code stays unspent).
      if (!session) return refuse({ kind: 'session_ended' });
      await audit.record({ type: 'reauthentication', userId, request, detail: { sessionId: session.id, method } }, tx);
      return session;
    });
    return marked.ok ? { kind: 'passed', session: marked.value, now } : marked.reason;
  }

  return {
    /**
     * Checks the proof for the user of `claims` (counted by the lockout like a sign-in, and a
     * second-factor proof by the session's own cap), then records the re-authentication on the
     * session (auth_time = now, amr gains the factor) and returns a new access token for it. The
     * refresh token stays: later refreshes carry the new auth_time, since it is on the session row.
     */
    async reauthenticate(claims: AccessClaims, proof: ReauthenticationProof, request: RequestInfo): Promise<Reauthenticated> {
      const method = proofOf(proof);
      const user = await findUserById(db, claims.sub);
      if (!user) throw new InvalidCredentialsError();
      const failure = (reason: string) =>
        audit.record({ type: 'reauthentication', userId: user.id, request, detail: { sessionId: claims.sid, method, failed: reason } });
      const attempt = await guard.reserveSignIn(user.email, request);
      let outcome: Outcome;
      try {
        outcome = await check(user, claims, { ...proof, method }, request);
      } catch (err) {
        await attempt.release(); // no verdict (argon2 overload, a database fault): not a failure
        throw err;
      }
      switch (outcome.kind) {
        case 'passed': {
          // Like a sign-in: a right password alone clears nothing for a user with a second factor
          // (or guessed codes could be interleaved with it forever); a passed factor does.
          if (method === 'password' && (await secondFactors.methodsOf(user.id)).length > 0) await attempt.release();
          else await attempt.succeeded();
          const { session, now } = outcome;
          const access = await auth.issueAccessToken(session, now);
          return { ...access, authTime: session.authTime, amr: session.amr };
        }
        case 'wrong':
          if (outcome.refused) await secondFactors.codeRefused(user.id, outcome.refused, request, 'reauthenticate');
          await failure(`wrong_${method}`);
          await attempt.failed();
          throw method === 'password' ? new InvalidCredentialsError() : new InvalidSecondFactorError('wrong_code');
        case 'unverifiable':
          // The server cannot check app codes (its key changed): not the user's wrong guess.
          await secondFactors.codeRefused(user.id, outcome.refused, request, 'reauthenticate');
          await failure('unverifiable');
          await returnFactorGuess(db, claims.sid);
          await attempt.release();
          throw new InvalidSecondFactorError('unverifiable');
        case 'exhausted':
          await attempt.release(); // nothing checked: no verdict
          await failure('guesses_exhausted');
          throw new InvalidSecondFactorError('exhausted');
        case 'session_ended':
          await attempt.release();
          await failure('session_ended');
          throw new InvalidCredentialsError();
      }
    },
  };
}

export type Reauthentication = ReturnType<typeof createReauthentication>;
