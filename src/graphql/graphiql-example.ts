import type { GraphiQLOptions } from 'graphql-yoga';

/** What GraphiQL's Headers tab holds at first: where the access token goes, to be replaced. */
export const GRAPHIQL_EXAMPLE_HEADERS = JSON.stringify({ Authorization: 'Bearer <accessToken from login>' }, null, 2);

/**
 * The document GraphiQL opens with: sign up, sign in, ask who you are. Each union result selects
 * `__typename` and `... on Error { code message }`, as clients should, so a refusal shows its code
 * instead of an empty object. test/unit/graphiql-example.test.ts validates it against the schema.
 * No shared fragment: GraphiQL sends the chosen operation with every fragment of the document,
 * and the server refuses a fragment that operation does not use (Me would fail).
 */
export const GRAPHIQL_EXAMPLE_DOCUMENT = `# Welcome to authgraph.
#
# 1. Run Register (or Login, once registered): put the
#    cursor inside it and press Ctrl-Enter, or press the
#    run button and pick it.
# 2. Copy accessToken from the result into the Headers
#    tab below, in place of the placeholder:
#      {"Authorization": "Bearer <accessToken from login>"}
#    A token goes in a header, never in a URL.
# 3. Run Me.
#
# register and login answer a union: __typename names
# the member that arrived, and ... on Error { code message }
# shows any refusal (email taken, wrong password, rate
# limited) with its stable code.

mutation Register {
  register(
    input: {
      email: "ada@example.com"
      password: "vivid-Otter-42-lantern"
      name: "Ada"
    }
  ) {
    __typename
    ... on AuthPayload {
      accessToken
      refreshToken
      accessTokenExpiresAt
      user { id email roles }
    }
    ... on InputError { field code message }
    ... on Error { code message }
  }
}

mutation Login {
  login(
    input: {
      email: "ada@example.com"
      password: "vivid-Otter-42-lantern"
    }
  ) {
    __typename
    ... on AuthPayload {
      accessToken
      refreshToken
      accessTokenExpiresAt
      user { id email roles }
    }
    ... on Error { code message }
  }
}

# Needs the Authorization header; without a valid token:
# UNAUTHENTICATED, and extensions.reason says MISSING,
# MALFORMED, EXPIRED (refresh) or REVOKED (sign in again).
query Me {
  me { id email name roles permissions }
}
`;

/** GraphiQL's options: the example document, the header placeholder, our title. */
export const GRAPHIQL_OPTIONS: GraphiQLOptions = {
  title: 'authgraph GraphiQL',
  defaultQuery: GRAPHIQL_EXAMPLE_DOCUMENT,
  defaultHeaders: GRAPHIQL_EXAMPLE_HEADERS,
  // Show the Headers tab open: the next step after signing in happens there.
  defaultEditorToolsVisibility: 'headers',
};
