/**
 * Apollo Client's InMemoryCache matches `... on Error` (an interface) and the members of result
 * unions only when it knows them: the example set-up gives it the generated possible-types.json.
 */
import { gql, InMemoryCache, type TypedDocumentNode } from '@apollo/client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApolloClient } from '../../examples/clients/apollo-client.js';
import { startFrontendServer, type FrontendServer } from '../support/frontend.js';
import { registerUser } from '../support/operations.js';

type Outcome = TypedDocumentNode<Record<string, Record<string, unknown>>, { input: Record<string, string> }>;
const RESULT = `__typename ... on AuthPayload { accessToken } ... on Error { code message } ... on InputError { field }`;
const LOGIN: Outcome = gql(`mutation Login($input: LoginInput!) { login(input: $input) { ${RESULT} } }`);
const REGISTER: Outcome = gql(`mutation Register($input: RegisterInput!) { register(input: $input) { ${RESULT} } }`);
const WRONG_PASSWORD = 'wrong-Horse-81-battery';

let server: FrontendServer;
beforeAll(async () => {
  server = await startFrontendServer();
});
afterAll(() => server?.close());

/** Signs in with a wrong password through a client of the example set-up (with this cache, if given). */
async function failedLogin(cache?: InMemoryCache) {
  const user = await registerUser(server.t);
  const { client } = createApolloClient({ url: server.url, onSignedOut: () => {}, cache });
  const result = await client.mutate({ mutation: LOGIN, variables: { input: { email: user.email, password: WRONG_PASSWORD } } });
  return result.data;
}

describe('Apollo Client cache and typed errors', () => {
  it('keeps code and message of `... on Error` with the generated possibleTypes', async () => {
    expect(await failedLogin()).toEqual({
      login: { __typename: 'InvalidCredentialsError', code: 'INVALID_CREDENTIALS', message: 'The email or password is incorrect.' },
    });
  });

  it('keeps the fields of a union member and of the Error interface together (InputError)', async () => {
    const { client } = createApolloClient({ url: server.url, onSignedOut: () => {} });
    const result = await client.mutate({ mutation: REGISTER, variables: { input: { email: 'not-an-address', password: WRONG_PASSWORD } } });
    expect(result.data?.register).toMatchObject({ __typename: 'InputError', code: 'INVALID_INPUT', field: 'email', message: expect.any(String) });
  });

  it('drops them without possibleTypes: why the set-up passes possible-types.json', async () => {
    // Apollo warns "missing possibleTypes entry" on the console meanwhile; the drop is what matters.
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      expect(await failedLogin(new InMemoryCache())).toEqual({ login: { __typename: 'InvalidCredentialsError' } });
    } finally {
      warn.mockRestore();
    }
  });
});
