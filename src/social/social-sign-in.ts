import { randomNonce, randomPKCECodeVerifier, randomState } from 'openid-client';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Database, Tx } from '../db/client.js';
import type { IdentityRow } from '../db/schema.js';
import {
  AccountDisabledError,
  AccountExistsError,
  EmailTakenError,
  InputError,
  SocialSignInError,
} from '../errors.js';
import { findUserByEmail, insertUser, lockUser, recordSignIn } from '../accounts/accounts.js';
import { isAccountEmail, MAX_NAME_LENGTH, normalizeEmail, normalizeName } from '../accounts/email.js';
import type { Logger } from '../logger.js';
import type { RequestInfo } from '../request-info.js';
import type { AccessClaims } from '../tokens/access-tokens.js';
import { isStorableText } from '../storable-text.js';
import type { SecondFactors } from '../credentials/second-factors.js';
import { CHALLENGE_TTL_SECONDS, issueChallenge, SecondFactorRequired } from '../credentials/sign-in-challenges.js';
import { assertWayToSignIn } from '../credentials/sign-in-methods.js';
import type { AuthService, AuthTokens } from '../sessions/session-service.js';
import { lockUserForSession, revokeUserSessions, startSession, type SessionPolicy } from '../sessions/sessions.js';
import { deleteIdentity, findIdentity, insertIdentity, listIdentities } from './identities.js';
import type { ProviderClients, ProviderProfile } from './provider-clients.js';
import type { SocialConfig, SocialProviderConfig } from './social-config.js';
import { consumeSocialState, saveSocialState, type PendingSocialSignIn } from './social-states.js';

export interface SocialSignInDeps {
  db: Database;
  clock: Clock;
  audit: AuditLog;
  logger: Logger;
  auth: Pick<AuthService, 'issueTokens'>;
  sessionPolicy: SessionPolicy;
  config: SocialConfig;
  clients: ProviderClients;
  /** The user's second factors: a linked identity of a user with one stops at SecondFactorRequired, as a password does. */
  secondFactors: Pick<SecondFactors, 'methodsOf'>;
}

/** What the frontend sends the user to, and the state it gets back with the code. */
export interface SocialSignInStart {
  authorizationUrl: string;
  state: string;
}

/** The provider's redirect as the frontend passes it on. */
export interface ProviderResponse {
  provider: string;
  code: string;
  state: string;
  iss?: string | null | undefined;
}

/** A PostgreSQL unique violation (drizzle puts the driver's error on `cause`). */
function isUniqueViolation(err: unknown): boolean {
  return (err as { cause?: { code?: string } }).cause?.code === '23505';
}

/** The provider's email as an account key, or null when it is none we could store. */
function accountEmailOf(profile: ProviderProfile): string | null {
  if (!profile.email) return null;
  const email = normalizeEmail(profile.email);
  return isAccountEmail(email) ? email : null;
}

/** The provider's display name, trimmed to what accounts hold; empty is none. */
function accountNameOf(profile: ProviderProfile): string | null {
  const name = [...normalizeName(profile.name ?? '')].slice(0, MAX_NAME_LENGTH).join('');
  return name === '' || !isStorableText(name) ? null : name;
}

/** How a session opened through a provider was authenticated (RFC 8176: federated). */
const FEDERATED = ['fed'];

/** The longest provider user id kept (OpenID Connect Core 2: `sub` is at most 255 ASCII characters). */
const MAX_SUBJECT_LENGTH = 255;


type SignInOutcome =
  | { kind: 'signed_in'; tokens: Parameters<AuthService['issueTokens']>; created: boolean }
  | { kind: 'second_factor'; answer: SecondFactorRequired }
  | { kind: 'disabled'; userId: string }
  | { kind: 'exists'; userId: string };

/**
 * Sign-in through a provider (OpenID Connect or GitHub), and linking providers to accounts.
 * The rule that matters: an identity is linked to an account only by a user signed in to that
 * account (startIdentityLink/completeIdentityLink), never because the provider's email matches
 * one, verified or not: a provider that lies about an address, or lets anyone claim one, would
 * otherwise hand over the account.
 */
export function createSocialSignIn(deps: SocialSignInDeps) {
  const { db, clock, audit, logger, auth, sessionPolicy, config, clients, secondFactors } = deps;

  function providerOf(id: string): SocialProviderConfig {
    const provider = config.providers.find((p) => p.id === id);
    if (!provider) throw new InputError('provider', 'There is no sign-in provider with this id.');
    return provider;
  }

  async function start(providerId: string, redirectUri: string, userId: string | null): Promise<SocialSignInStart> {
    const provider = providerOf(providerId);
    // Exact match: no prefix, no normalization (a trailing slash or a query is another URI).
    if (!config.redirectUris.includes(redirectUri)) {
      throw new InputError('redirectUri', 'This redirect URI is not allowed (SOCIAL_REDIRECT_URIS).');
    }
    const checks = { redirectUri, state: randomState(), nonce: randomNonce(), codeVerifier: randomPKCECodeVerifier() };
    const authorizationUrl = await clients.authorizationUrl(provider, checks);
    const { state, ...kept } = checks;
    await saveSocialState(db, state, { ...kept, provider: provider.id, userId }, { now: clock.now(), ttlSeconds: config.stateTtl });
    return { authorizationUrl, state };
  }

  /**
   * Spends the state (whatever follows) and checks it was started for this provider and this
   * purpose (a sign-in, or a link by `linkingUser`), then asks the provider who the user is.
   */
  async function complete(response: ProviderResponse, linkingUser: string | null): Promise<{ provider: SocialProviderConfig; profile: ProviderProfile }> {
    const provider = providerOf(response.provider);
    const pending: PendingSocialSignIn | null = response.state ? await consumeSocialState(db, response.state, clock.now()) : null;
    if (!pending) throw new SocialSignInError('state unknown, spent or expired');
    if (pending.provider !== provider.id) throw new SocialSignInError('state of another provider');
    if (pending.userId !== linkingUser) throw new SocialSignInError('state of another purpose or user');
    const profile = await clients.profile(
      provider,
      { code: response.code, state: response.state, iss: response.iss ?? null },
      { redirectUri: pending.redirectUri, state: response.state, nonce: pending.nonce, codeVerifier: pending.codeVerifier },
    );
    // The provider's id of the user keys its identity: one that could not be stored as sent is
    // refused, never altered (two altered ids could become one).
    if (profile.subject === '' || profile.subject.length > MAX_SUBJECT_LENGTH || !isStorableText(profile.subject)) {
      throw new SocialSignInError('provider user id unusable');
    }
    return { provider, profile };
  }

  /** Opens a session for the identity's user, or creates the account; retried once after a race on the unique indexes. */
  async function signInOrCreate(provider: SocialProviderConfig, profile: ProviderProfile, request: RequestInfo): Promise<SignInOutcome> {
    const now = clock.now();
    const attempt = () =>
      db.transaction(async (tx): Promise<SignInOutcome> => {
        const identity = await findIdentity(tx, provider.id, profile.subject);
        if (identity) {
          const user = await lockUser(tx, identity.userId);
          if (!user?.active) return { kind: 'disabled', userId: identity.userId };
          // The provider is one factor, like a password: a user with a second factor finishes
          // with completeSignIn, on a challenge bound to this identity (amr fed+otp).
          const methods = await secondFactors.methodsOf(user.id, tx);
          if (methods.length > 0) {
            const issued = await issueChallenge(tx, { userId: user.id, firstStep: { factor: 'fed', identityId: identity.id }, now });
            return { kind: 'second_factor', answer: new SecondFactorRequired(issued.challenge, methods, CHALLENGE_TTL_SECONDS) };
          }
          const signedIn = await recordSignIn(tx, user.id, { now });
          const started = await startSession(tx, { userId: user.id, request, now, policy: sessionPolicy, amr: FEDERATED });
          const detail = { sessionId: started.session.id, method: 'social', provider: provider.id };
          await audit.record({ type: 'login_success', userId: user.id, request, detail }, tx);
          return { kind: 'signed_in', tokens: [signedIn, started.session, started.refreshToken, now], created: false };
        }
        const email = accountEmailOf(profile);
        if (!email) throw new SocialSignInError('the provider gave no usable email');
        const existing = await findUserByEmail(tx, email);
        if (existing) return { kind: 'exists', userId: existing.id };
        const created = await insertUser(tx, {
          email,
          passwordHash: null,
          name: accountNameOf(profile),
          emailVerified: profile.emailVerified,
          now,
        });
        await insertIdentity(tx, { userId: created.id, provider: provider.id, subject: profile.subject, email, now });
        const user = await recordSignIn(tx, created.id, { now });
        const started = await startSession(tx, { userId: user.id, request, now, policy: sessionPolicy, amr: FEDERATED });
        const detail = { sessionId: started.session.id, method: 'social', provider: provider.id };
        await audit.record({ type: 'register', userId: user.id, request, detail }, tx);
        return { kind: 'signed_in', tokens: [user, started.session, started.refreshToken, now], created: true };
      });
    try {
      return await attempt();
    } catch (err) {
      // A concurrent sign-in of the same identity or address committed first: look again.
      if (err instanceof EmailTakenError || isUniqueViolation(err)) return attempt();
      throw err;
    }
  }

  return {
    /** Starts a sign-in: the provider's authorization URL and the state the frontend gets back. */
    startSignIn: (providerId: string, redirectUri: string) => start(providerId, redirectUri, null),

    /** Starts linking a provider to the signed-in user's account (the field requires a recent sign-in). */
    startLink: (providerId: string, redirectUri: string, userId: string) => start(providerId, redirectUri, userId),


    /**
     * Completes a sign-in: a linked identity signs its user in, or, when the user has a second
     * factor, answers SecondFactorRequired (thrown, carried as a union member: no session until
     * completeSignIn); a new identity whose email no account has creates one (email verified
     * only if the provider asserts it); one whose email an account has is AccountExistsError,
     * linking nothing.
     */
    async completeSignIn(response: ProviderResponse, request: RequestInfo): Promise<AuthTokens> {
      const failure = (reason: string, userId: string | null = null) =>
        audit.record({ type: 'login_failure', userId, request, detail: { reason, method: 'social', provider: response.provider } });
      let outcome: SignInOutcome;
      try {
        const { provider, profile } = await complete(response, null);
        outcome = await signInOrCreate(provider, profile, request);
      } catch (err) {
        if (err instanceof SocialSignInError) {
          logger.info({ provider: response.provider, reason: err.cause }, 'social sign-in failed');
          await failure('social_sign_in_failed');
        }
        throw err;
      }
      switch (outcome.kind) {
        case 'disabled':
          await failure('account_disabled', outcome.userId);
          throw new AccountDisabledError();
        case 'exists':
          await failure('account_exists', outcome.userId);
          throw new AccountExistsError();
        case 'second_factor':
          throw outcome.answer;
        case 'signed_in':
          return auth.issueTokens(...outcome.tokens);
      }
    },

    /**
     * Completes a link started by the caller's user: the identity joins the account, unless
     * another account has it. Under the user's lock, the caller's session must still be live
     * (SessionEndedError): one signed out meanwhile links nothing.
     */
    async completeLink(response: ProviderResponse, claims: Pick<AccessClaims, 'sub' | 'sid'>, request: RequestInfo): Promise<IdentityRow> {
      const userId = claims.sub;
      const failure = (reason: string) =>
        audit.record({ type: 'identity_link_failure', userId, request, detail: { reason, provider: response.provider } });
      let completed: Awaited<ReturnType<typeof complete>>;
      try {
        completed = await complete(response, userId);
      } catch (err) {
        if (err instanceof SocialSignInError) {
          logger.info({ provider: response.provider, reason: err.cause }, 'identity link failed');
          await failure('social_sign_in_failed');
        }
        throw err;
      }
      const { provider, profile } = completed;
      const now = clock.now();
      const link = () =>
        db.transaction(async (tx: Tx) => {
          await lockUserForSession(tx, claims, now);
          const existing = await findIdentity(tx, provider.id, profile.subject);
          if (existing) return existing;
          const identity = await insertIdentity(tx, {
            userId,
            provider: provider.id,
            subject: profile.subject,
            email: accountEmailOf(profile),
            now,
          });
          await audit.record({ type: 'identity_linked', userId, request, detail: { provider: provider.id, identityId: identity.id } }, tx);
          return identity;
        });
      const identity = await link().catch((err: unknown) => (isUniqueViolation(err) ? link() : Promise.reject(err)));
      if (identity.userId !== userId) {
        await failure('account_exists');
        throw new AccountExistsError();
      }
      return identity;
    },

    /**
     * Unlinks one of the signed-in user's identities, unless it is the account's last way to sign
     * in (no password, no other identity, no passkey: assertWayToSignIn). False when the user has
     * no identity with this id. Ends the user's other sessions: a way in changed, as when a factor
     * changes (a session opened through the unlinked identity, perhaps an attacker's, must not
     * outlive it); the caller's own session stays.
     */
    async unlink(claims: AccessClaims, identityId: string | null, request: RequestInfo): Promise<boolean> {
      if (!identityId) return false;
      const userId = claims.sub;
      const now = clock.now();
      return db.transaction(async (tx) => {
        // The lock orders concurrent unlinks of one user: the second sees the first's result. A
        // session signed out while it waited unlinks nothing (SessionEndedError).
        const user = await lockUserForSession(tx, claims, now);
        const removed = await deleteIdentity(tx, userId, identityId);
        if (!removed) return false;
        await assertWayToSignIn(tx, user);
        const revokedSessions = await revokeUserSessions(tx, userId, now, { except: claims.sid });
        const detail = { provider: removed.provider, identityId, revokedSessions };
        await audit.record({ type: 'identity_unlinked', userId, request, detail }, tx);
        return true;
      });
    },

    /** The user's linked identities. */
    identitiesOf: (userId: string) => listIdentities(db, userId),

    /** The configured providers, as the frontend lists them. */
    providers: () => config.providers.map(({ id, name }) => ({ id, name })),
  };
}

export type SocialSignIn = ReturnType<typeof createSocialSignIn>;
