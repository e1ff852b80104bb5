/**
 * The `refresh` mutation as a client sends it. REFRESH in operations.ts reuses a selection
 * with `... on InputError { field }`, and InputError is not a member of RefreshResult, so that
 * document fails validation ("Fragment cannot be spread here").
 */
export const REFRESH_OPERATION = `mutation Refresh($token: String) {
  refresh(refreshToken: $token) {
    __typename
    ... on AuthPayload { accessToken refreshToken tokenType expiresIn refreshExpiresIn user { id email name roles emailVerified active createdAt } }
    ... on Error { code message }
    ... on RateLimitedError { retryAfter }
  }
}`;
