import * as oidc from 'openid-client';
import { SocialSignInError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { SocialProviderConfig } from './social-config.js';

/** What a provider says about the user who came back from it. */
export interface ProviderProfile {
  /** The provider's stable id of the user: the ID token's `sub`, GitHub's numeric user id. */
  subject: string;
  email: string | null;
  /** True only when the provider asserts it (`email_verified: true`, GitHub's verified primary). */
  emailVerified: boolean;
  name: string | null;
}

/** The checks a start hands to the provider, kept (social-states.ts) for the completion. */
export interface AuthorizationChecks {
  redirectUri: string;
  state: string;
  nonce: string;
  codeVerifier: string;
}

/** Seconds one request to a provider may take (discovery, token, user info, GitHub's API). */
const PROVIDER_TIMEOUT = 10;

type GitHubEmail = { email?: unknown; primary?: unknown; verified?: unknown };

/**
 * openid-client configurations of the providers, each made at its first use: an OpenID Connect
 * issuer by discovery, GitHub from its documented endpoints. A discovery that fails (the issuer
 * unreachable) is not kept: the next use tries again, and until one succeeds the provider
 * answers SocialSignInError; the server itself starts and serves without it.
 */
export function createProviderClients(providers: readonly SocialProviderConfig[], logger: Logger) {
  const configurations = new Map<string, Promise<oidc.Configuration>>();

  async function configure(provider: SocialProviderConfig): Promise<oidc.Configuration> {
    // Only a loopback http:// URL outside production gets here with this set (social-config.ts).
    const execute = provider.allowInsecureRequests ? [oidc.allowInsecureRequests] : [];
    if (provider.kind === 'oidc') {
      return oidc.discovery(provider.issuer, provider.clientId, provider.clientSecret, undefined, {
        execute,
        timeout: PROVIDER_TIMEOUT,
      });
    }
    // GitHub is OAuth 2.0 without discovery: its documented endpoints, under SOCIAL_GITHUB_WEB_URL.
    const web = provider.webUrl.href.replace(/\/$/, '');
    const configuration = new oidc.Configuration(
      {
        issuer: web,
        authorization_endpoint: `${web}/login/oauth/authorize`,
        token_endpoint: `${web}/login/oauth/access_token`,
      },
      provider.clientId,
      provider.clientSecret,
    );
    for (const step of execute) step(configuration);
    configuration.timeout = PROVIDER_TIMEOUT;
    return configuration;
  }

  async function configurationOf(provider: SocialProviderConfig): Promise<oidc.Configuration> {
    let pending = configurations.get(provider.id);
    if (!pending) {
      pending = configure(provider);
      configurations.set(provider.id, pending);
      pending.catch(() => configurations.delete(provider.id));
    }
    try {
      return await pending;
    } catch (err) {
      logger.warn({ provider: provider.id, err: describe(err) }, 'social provider unavailable (discovery failed)');
      throw new SocialSignInError('provider unavailable');
    }
  }

  async function githubProfile(provider: SocialProviderConfig & { kind: 'github' }, configuration: oidc.Configuration, accessToken: string) {
    const api = provider.apiUrl.href.replace(/\/$/, '');
    const get = async (path: string) => {
      const headers = new Headers({ accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' });
      const response = await oidc.fetchProtectedResource(configuration, accessToken, new URL(`${api}${path}`), 'GET', undefined, headers);
      if (!response.ok) throw new Error(`GitHub ${path} answered ${response.status}`);
      return (await response.json()) as unknown;
    };
    const user = (await get('/user')) as { id?: unknown; name?: unknown; login?: unknown };
    if (typeof user.id !== 'number' || !Number.isSafeInteger(user.id)) throw new Error('GitHub /user has no numeric id');
    const emails = await get('/user/emails');
    // Only the primary address, and only GitHub's word that it is verified, counts.
    const primary = Array.isArray(emails) ? (emails as GitHubEmail[]).find((e) => e.primary === true && typeof e.email === 'string') : undefined;
    return {
      subject: String(user.id),
      email: (primary?.email as string | undefined) ?? null,
      emailVerified: primary?.verified === true,
      name: typeof user.name === 'string' ? user.name : typeof user.login === 'string' ? user.login : null,
    };
  }

  async function oidcProfile(configuration: oidc.Configuration, tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>) {
    const claims = tokens.claims();
    if (!claims) throw new Error('no ID token');
    let source: Record<string, unknown> = claims;
    // With the code flow many providers keep profile claims out of the ID token (OIDC Core
    // 5.4): then they come from the userinfo endpoint, bound to the ID token's subject.
    if (typeof claims.email !== 'string' && configuration.serverMetadata().userinfo_endpoint) {
      source = await oidc.fetchUserInfo(configuration, tokens.access_token, claims.sub);
    }
    return {
      subject: claims.sub,
      email: typeof source.email === 'string' ? source.email : null,
      emailVerified: source.email_verified === true,
      name: typeof source.name === 'string' ? source.name : null,
    };
  }

  return {
    /** The URL to send the user to: authorization code with PKCE (S256), state, and (OpenID Connect) a nonce. */
    async authorizationUrl(provider: SocialProviderConfig, checks: AuthorizationChecks): Promise<string> {
      const configuration = await configurationOf(provider);
      const parameters: Record<string, string> = {
        redirect_uri: checks.redirectUri,
        scope: provider.scopes,
        state: checks.state,
        code_challenge: await oidc.calculatePKCECodeChallenge(checks.codeVerifier),
        code_challenge_method: 'S256',
      };
      if (provider.kind === 'oidc') parameters.nonce = checks.nonce;
      return oidc.buildAuthorizationUrl(configuration, parameters).href;
    },

    /**
     * Redeems the code the provider sent back (with the PKCE verifier) and checks what came
     * with it: the state, the `iss` of the response (RFC 9207; the configured issuer when the
     * frontend had none), and for OpenID Connect the ID token's signature, issuer, audience,
     * expiry and nonce. Any failure is SocialSignInError; the provider's tokens are dropped here.
     */
    async profile(
      provider: SocialProviderConfig,
      response: { code: string; state: string; iss: string | null },
      checks: AuthorizationChecks,
    ): Promise<ProviderProfile> {
      const configuration = await configurationOf(provider);
      try {
        const callback = new URL(checks.redirectUri);
        callback.searchParams.set('code', response.code);
        callback.searchParams.set('state', response.state);
        callback.searchParams.set('iss', response.iss ?? configuration.serverMetadata().issuer);
        const tokens = await oidc.authorizationCodeGrant(configuration, callback, {
          pkceCodeVerifier: checks.codeVerifier,
          expectedState: checks.state,
          ...(provider.kind === 'oidc' ? { expectedNonce: checks.nonce, idTokenExpected: true } : {}),
        });
        return provider.kind === 'github'
          ? await githubProfile(provider, configuration, tokens.access_token)
          : await oidcProfile(configuration, tokens);
      } catch (err) {
        logger.info({ provider: provider.id, err: describe(err) }, 'social sign-in refused by its checks');
        throw new SocialSignInError(describe(err));
      }
    },
  };
}

export type ProviderClients = ReturnType<typeof createProviderClients>;

/** An error as its class, code and message: never a response body or a token. */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return 'unknown failure';
  const code = (err as { code?: unknown }).code;
  return `${err.name}${typeof code === 'string' ? ` ${code}` : ''}: ${err.message}`;
}
