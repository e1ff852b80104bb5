/** Operations and helpers of the second-factor tests, sent as a client sends them. */
import { expect } from 'vitest';
import type { GraphQLResponse } from '../support/app.js';

export const REAUTHENTICATE = `mutation Reauthenticate($password: String, $code: String, $passkey: JSON) {
  reauthenticate(password: $password, code: $code, passkey: $passkey) {
    __typename
    ... on Reauthentication { accessToken expiresIn authTime amr }
    ... on Error { code message }
    ... on InputError { field }
    ... on RateLimitedError { retryAfter }
  }
}`;

export const CHANGE_PASSWORD_BRIEF = `mutation ChangePassword($current: String!, $next: String!) {
  changePassword(currentPassword: $current, newPassword: $next) { __typename ... on AuthPayload { accessToken } ... on Error { code } }
}`;

/** The `extensions.code` of the one error of an answer refused by access control (no data for the field). */
export function refusalCode(res: GraphQLResponse): string | undefined {
  expect(res.errors, JSON.stringify(res)).toHaveLength(1);
  return res.errors![0]!.extensions?.code;
}
