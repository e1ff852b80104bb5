/**
 * The signed-in state a frontend keeps for authgraph, shared by the urql and Apollo set-ups:
 * the tokens (in cookie mode the browser holds the refresh token as an HttpOnly cookie), one
 * refresh at a time, and the moment the session is over. Framework-free; each client only tells it what the server said.
 */

/** What login, register and refresh hand out. */
export interface Tokens {
  accessToken: string;
  /** Null in cookie mode: the refresh token is a cookie no script can read. */
  refreshToken: string | null;
}

export interface AuthSessionOptions {
  /** The GraphQL endpoint, e.g. https://auth.example.com/graphql. */
  url: string;
  /** Tokens kept from an earlier visit, if any. */
  tokens?: Tokens | null;
  /** Called with every new pair (after sign-in and each refresh), to store them. */
  onTokens?: (tokens: Tokens) => void;
  /** Called when the session is over: revoked, or its refresh token refused. Show the sign-in page. */
  onSignedOut: () => void;
  /** The server's REFRESH_TOKEN_TRANSPORT: `cookie` sends requests with credentials. Defaults to `body`. */
  transport?: 'body' | 'cookie';
}

/**
 * The fetch credentials mode: `include` in cookie mode, so that the browser keeps the cookie that
 * login sets and sends it with refresh and logout (the server allows credentials to the origins
 * of CORS_ORIGINS); the fetch default otherwise, since a body-mode server allows none.
 */
export const credentialsOf = (options: AuthSessionOptions): RequestCredentials =>
  options.transport === 'cookie' ? 'include' : 'same-origin';

/** Why the server refused the access token (`extensions.reason` of UNAUTHENTICATED). */
export type UnauthenticatedReason = 'MISSING' | 'MALFORMED' | 'EXPIRED' | 'REVOKED';

/** The reason of the first UNAUTHENTICATED error among a response's errors, or null. */
export function unauthenticatedReason(errors: readonly { extensions?: Record<string, unknown> }[]): UnauthenticatedReason | null {
  const error = errors.find((e) => e.extensions?.code === 'UNAUTHENTICATED');
  return (error?.extensions?.reason as UnauthenticatedReason | undefined) ?? null;
}

const REFRESH = `mutation Refresh($refreshToken: String) {
  refresh(refreshToken: $refreshToken) {
    __typename
    ... on AuthPayload { accessToken refreshToken }
    ... on Error { code message }
  }
}`;

export interface AuthSession {
  /** The access token to send, or null when signed out. */
  accessToken(): string | null;
  /** Keeps the tokens of a login or register. */
  signIn(tokens: Tokens): void;
  /**
   * After an EXPIRED answer to a request sent with `sentToken`: refreshes, unless that token has
   * been replaced since (another request refreshed first). Concurrent calls share one refresh.
   */
  refresh(sentToken: string | null): Promise<void>;
  /**
   * After a REVOKED or MALFORMED answer to a request sent with `sentToken`: forgets the tokens
   * and calls onSignedOut, unless that token has been replaced since.
   */
  signOut(sentToken: string | null): void;
}

export function createAuthSession(options: AuthSessionOptions): AuthSession {
  let tokens = options.tokens ?? null;
  let refreshing: Promise<void> | null = null;

  function keep(next: Tokens) {
    tokens = next;
    options.onTokens?.(next);
  }

  function end() {
    if (!tokens) return;
    tokens = null;
    options.onSignedOut();
  }

  async function rotate(refreshToken: string | null): Promise<void> {
    // A JSON POST: the server's CSRF rule lets it through without any extra header. Without a
    // refreshToken (cookie mode) the server reads the cookie.
    const response = await fetch(options.url, {
      method: 'POST',
      credentials: credentialsOf(options),
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: REFRESH, variables: refreshToken ? { refreshToken } : {} }),
    });
    const result = (await response.json()) as { data?: { refresh?: Record<string, string> } | null };
    const payload = result.data?.refresh;
    if (payload?.__typename === 'AuthPayload') keep({ accessToken: payload.accessToken!, refreshToken: payload.refreshToken ?? null });
    // Revoked, expired or replayed: only a new sign-in helps.
    else if (payload?.__typename === 'InvalidRefreshTokenError') end();
    // Anything else (rate limited, server unavailable): keep the tokens; the retried request reports it.
  }

  return {
    accessToken: () => tokens?.accessToken ?? null,
    signIn: keep,
    refresh(sentToken) {
      if (refreshing) return refreshing;
      if (!tokens || tokens.accessToken !== sentToken) return Promise.resolve();
      refreshing = rotate(tokens.refreshToken).finally(() => {
        refreshing = null;
      });
      return refreshing;
    },
    signOut(sentToken) {
      if (tokens && tokens.accessToken === sentToken) end();
    },
  };
}
