// The page of test/browser/passkey.test.ts: a same-origin client of /graphql that runs the
// README's @simplewebauthn/browser snippet (served as readme-snippet.js), and records every call.
import { addPasskey, completeSignInWithPasskey, signInWithPasskey } from './readme-snippet.js';

let accessToken = null;
/** Every operation sent, with the HTTP status and body of its answer, oldest first. */
const calls = [];

/** The README snippet's `gql`: posts one operation, answers its `data`; GraphQL errors throw. */
async function gql(query, variables = {}) {
  const headers = { 'content-type': 'application/json' };
  if (accessToken) headers.authorization = `Bearer ${accessToken}`;
  const response = await fetch('/graphql', { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const body = await response.json();
  calls.push({ query, variables, status: response.status, body });
  if (body.errors) throw new Error(`${query}: ${JSON.stringify(body.errors)}`);
  return body.data;
}

window.passkeyPage = {
  gql,
  setAccessToken: (token) => void (accessToken = token),
  calls: () => calls,
  addPasskey: () => addPasskey(gql),
  signInWithPasskey: () => signInWithPasskey(gql),
  completeSignInWithPasskey: (step) => completeSignInWithPasskey(gql, step),
};
