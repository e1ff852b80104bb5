/**
 * The README's "Social sign-in" frontend snippet, run as printed (the button's part, then the
 * redirect page's part, each as a function of `gql` and the browser globals it touches), against
 * a real OpenID Provider on loopback: a frontend that copies it must sign in.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../../src/db/client.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { PROJECT_ROOT } from '../support/cli.js';
import { openTestDatabase } from '../support/database.js';
import { startOpenIdProvider, type TestOpenIdProvider } from '../support/identity-providers.js';
import { atProvider, CLIENT, oidcUser, socialEnv } from '../support/social-flow.js';

let database: DatabaseHandle;
let idp: TestOpenIdProvider;
let t: TestApp;

beforeAll(async () => {
  database = await openTestDatabase();
  idp = await startOpenIdProvider([CLIENT]);
  t = await createTestApp(socialEnv(idp.issuer), database);
});

afterAll(async () => {
  await t?.close();
  await idp?.close();
  await database?.close();
});

/** The README's frontend snippet of "Social sign-in": the button's part and the redirect page's part. */
function snippetParts(): { button: string; callback: string } {
  const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Social sign-in'));
  const block = /\*\*The frontend\.\*\*[\s\S]*?```ts\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error('no frontend snippet in the README section "Social sign-in"');
  const [button, callback] = block.split('// On https://app.example/auth/callback:');
  return { button: button!, callback: `${callback!}\nreturn r;` };
}

/** sessionStorage as browsers have it: values are stored as strings (setItem(k, undefined) stores "undefined"). */
class SessionStorage {
  readonly #items = new Map<string, string>();
  getItem = (key: string) => this.#items.get(key) ?? null;
  setItem = (key: string, value: unknown) => void this.#items.set(key, String(value));
  removeItem = (key: string) => void this.#items.delete(key);
}

// eslint-disable-next-line @typescript-eslint/no-empty-function
const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (...values: unknown[]) => Promise<unknown>;

describe('README "Social sign-in": the frontend snippet as printed', () => {
  it('signs a new provider user in: the button keeps the state, and the redirect page finds it there', async () => {
    const { button, callback } = snippetParts();
    const gql = async (query: string, variables: Record<string, unknown>) => {
      const res = await t.gql(query, variables);
      expect(res.errors, JSON.stringify(res)).toBeUndefined();
      return res.data;
    };
    const sessionStorage = new SessionStorage();
    let sentTo: string | null = null;
    const buttonPage = { assign: (url: string) => void (sentTo = url), search: '', pathname: '/' };
    await new AsyncFunction('gql', 'sessionStorage', 'location', 'history', 'provider', button)(gql, sessionStorage, buttonPage, {}, 'corp');
    expect(sentTo).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);

    const back = await atProvider({ idp }, sentTo!, oidcUser());
    const redirectPage = { search: `?${back.toString()}`, pathname: '/auth/callback', assign: () => {} };
    const history = { replaceState: () => {} };
    const answer = await new AsyncFunction('gql', 'sessionStorage', 'location', 'history', callback)(gql, sessionStorage, redirectPage, history);
    expect(answer).toMatchObject({ __typename: 'AuthPayload' });
  });
});
