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
  /**
   * On page load: true when signed in. In cookie mode, with no access token kept (a reload keeps
   * none), it refreshes with the browser's cookie; when there is no cookie or its session is over
   * (or the server cannot be reached) it resolves false, quietly: no error, no onSignedOut (the
   * page was not signed in). In body mode: whether tokens were given.
   */
  resume(): Promise<boolean>;
}

export function createAuthSession(options: AuthSessionOptions): AuthSession {
  let tokens = options.tokens ?? null;
  let refreshing: Promise<boolean> | null = null;

  function keep(next: Tokens) {
    tokens = next;
    options.onTokens?.(next);
  }

  function end() {
    if (!tokens) return;
    tokens = null;
    options.onSignedOut();
  }

  /** Asks for a new pair; true when one came. */
  async function rotate(refreshToken: string | null): Promise<boolean> {
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
    if (payload?.__typename === 'AuthPayload') {
      keep({ accessToken: payload.accessToken!, refreshToken: payload.refreshToken ?? null });
      return true;
    }
    // Revoked, expired or replayed: only a new sign-in helps.
    if (payload?.__typename === 'InvalidRefreshTokenError') end();
    // Anything else (rate limited, server unavailable): keep the tokens; the retried request reports it.
    return false;
  }

  /** One refresh at a time: a call while one runs shares it. */
  function once(refreshToken: string | null): Promise<boolean> {
    refreshing ??= rotate(refreshToken).finally(() => {
      refreshing = null;
    });
    return refreshing;
  }

  return {
    accessToken: () => tokens?.accessToken ?? null,
    signIn: keep,
    async refresh(sentToken) {
      if (refreshing) await refreshing;
      else if (tokens && tokens.accessToken === sentToken) await once(tokens.refreshToken);
    },
    signOut(sentToken) {
      if (tokens && tokens.accessToken === sentToken) end();
    },
    async resume() {
      if (tokens || options.transport !== 'cookie') return tokens !== null;
      // No argument: the server reads the cookie. Without one, it answers InvalidRefreshTokenError.
      return once(null).catch(() => false);
    },
  };
}
