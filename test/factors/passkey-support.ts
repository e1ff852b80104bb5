/** Operations and helpers of the passkey tests, sent as a client sends them. */
import { expect } from 'vitest';
import type { ServedApp } from '../support/served.js';
import { verifyAddressOf } from './support.js';
import { SoftAuthenticator, type Bend } from '../support/webauthn-authenticator.js';

/** The relying party the passkey tests configure, and the page origin the authenticator answers from. */
export const ORIGIN = 'https://app.example';
export const PASSKEY_ENV = { RP_ID: 'app.example', RP_ORIGINS: ORIGIN };

export const START_REGISTRATION = `mutation { startPasskeyRegistration }`;
export const FINISH_REGISTRATION = `mutation Finish($response: JSON!, $name: String) {
  finishPasskeyRegistration(response: $response, name: $name) {
    __typename
    ... on Passkey { id name createdAt lastUsedAt }
    ... on Error { code message }
    ... on InputError { field }
  }
}`;
export const REMOVE_PASSKEY = `mutation Remove($id: ID!) { removePasskey(id: $id) }`;
export const MY_PASSKEYS = `query { me { id secondFactors passkeys { id name createdAt lastUsedAt } } }`;
export const START_SIGN_IN = `mutation Start($email: String) { startPasskeySignIn(email: $email) }`;
export const FINISH_SIGN_IN = `mutation Finish($response: JSON!) {
  finishPasskeySignIn(response: $response) {
    __typename
    ... on AuthPayload { accessToken refreshToken user { id } }
    ... on Error { code message }
    ... on RateLimitedError { retryAfter }
  }
}`;

/** Registers a passkey of `authenticator` for the signed-in user; returns the Passkey. */
export async function addPasskey(app: ServedApp, token: string, authenticator: SoftAuthenticator, options: { name?: string; counting?: boolean } = {}) {
  await verifyAddressOf(app, token);
  const started = await app.gql(START_REGISTRATION, {}, { token });
  expect(started.errors, JSON.stringify(started)).toBeUndefined();
  const response = authenticator.create(started.data!.startPasskeyRegistration, {}, { counting: options.counting ?? true });
  const finished = await app.gql(FINISH_REGISTRATION, { response, name: options.name ?? null }, { token });
  expect(finished.data?.finishPasskeyRegistration.__typename, JSON.stringify(finished)).toBe('Passkey');
  return finished.data!.finishPasskeyRegistration as { id: string; name: string | null };
}

/** startPasskeySignIn then finishPasskeySignIn with the authenticator's answer (bent as asked); the result. */
export async function passkeySignIn(app: ServedApp, authenticator: SoftAuthenticator, options: { email?: string; bend?: Bend } = {}) {
  const started = await app.gql(START_SIGN_IN, { email: options.email ?? null });
  expect(started.errors, JSON.stringify(started)).toBeUndefined();
  const response = authenticator.get(started.data!.startPasskeySignIn, options.bend);
  const res = await app.gql(FINISH_SIGN_IN, { response });
  return res.data?.finishPasskeySignIn ?? res;
}

/** A passwordless passkey sign-in with user verification (two factors: `hwk`, `user`); its access token. */
export async function twoFactorSession(app: ServedApp, authenticator: SoftAuthenticator): Promise<string> {
  const payload = await passkeySignIn(app, authenticator);
  expect(payload.__typename, JSON.stringify(payload)).toBe('AuthPayload');
  return payload.accessToken as string;
}
