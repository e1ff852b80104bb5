/**
 * Passkeys in a real browser: Debian's Chromium with its virtual authenticator (CDP WebAuthn
 * domain) on a page of http://localhost:<port>, the origin RP_ORIGINS names, running the
 * README's @simplewebauthn/browser snippet as it is printed there. It adds a passkey, signs in
 * with it without a password or an email, passes the second factor after a password with it,
 * and is refused (a typed error, not a 500) as a cloned authenticator and after the passkey's
 * removal.
 *
 * The page is served by this test in front of the app on the same port (so the same origin:
 * no CORS, the page's own strict CSP): /passkey-page/ (index.html, page.js), readme-snippet.js
 * built from the README's code block, and @simplewebauthn/browser's ESM build from
 * node_modules under /vendor/ (no CDN), named by an import map so the snippet's import line
 * works unchanged. Everything else goes to the app.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join, relative, resolve, sep } from 'node:path';
import { eq } from 'drizzle-orm';
import { decodeJwt } from 'jose';
import type { Browser, CDPSession, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authEvents } from '../../src/db/schema.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { BROWSER_TIMEOUT, CHROMIUM, launchChromium, skipWithoutChromium, STEP_TIMEOUT, watchProblems } from '../support/chromium.js';
import { PROJECT_ROOT } from '../support/cli.js';
import { listen, type Listening } from '../support/listen.js';
import { GOOD_PASSWORD, LOGIN, REGISTER, uniqueEmail } from '../support/operations.js';
import { verifyAddressOf } from '../factors/support.js';

const skip = skipWithoutChromium('test/browser/passkey.test.ts');

const PAGE_DIR = join(PROJECT_ROOT, 'test/browser/passkey-page');
/** @simplewebauthn/browser's ESM build, served at LIBRARY_PATH (index.html's import map names it). */
const LIBRARY_DIR = join(PROJECT_ROOT, 'node_modules/@simplewebauthn/browser/esm');
const LIBRARY_PATH = '/vendor/simplewebauthn-browser/';

/** The three parts of the README's browser snippet, by their opening comment, and the function each becomes. */
const SNIPPET_PARTS = [
  { heading: /^\/\/ Add a passkey\b/, fn: 'addPasskey(gql)' },
  { heading: /^\/\/ Sign in without a password\b/, fn: 'signInWithPasskey(gql)' },
  { heading: /^\/\/ As the second factor\b/, fn: 'completeSignInWithPasskey(gql, step)' },
];
const SNIPPET_IMPORT = "import { startAuthentication, startRegistration } from '@simplewebauthn/browser';";

/**
 * The README's @simplewebauthn/browser code block as an ES module: its import line as printed,
 * and each of its parts, verbatim, as the body of an exported function of the names it uses
 * (`gql`, and `step` for the second factor), which the page supplies.
 */
function readmeSnippetModule(readme: string): string {
  const block = [...readme.matchAll(/```ts\n([\s\S]*?)```\n/g)].map((m) => m[1]!).find((code) => code.startsWith(SNIPPET_IMPORT));
  if (!block) throw new Error(`README.md has no \`\`\`ts block opening with ${SNIPPET_IMPORT}`);
  const parts = block.slice(SNIPPET_IMPORT.length).trim().split(/\n\s*\n/);
  if (parts.length !== SNIPPET_PARTS.length || SNIPPET_PARTS.some((part, i) => !part.heading.test(parts[i]!))) {
    throw new Error(`README.md's passkey snippet no longer has the parts this test runs (${SNIPPET_PARTS.map((p) => p.heading).join(', ')})`);
  }
  const functions = SNIPPET_PARTS.map((part, i) => `export async function ${part.fn} {\n${parts[i]}\n}\n`);
  return [SNIPPET_IMPORT, '', ...functions].join('\n');
}

const IMPORT_MAP = /<script type="importmap">([\s\S]*?)<\/script>/;

/** The page's CSP: its own scripts and the import map (by hash), requests to its origin only. */
function pageCsp(html: string): string {
  const importMap = IMPORT_MAP.exec(html)?.[1];
  if (importMap === undefined) throw new Error('index.html has no import map');
  const hash = createHash('sha256').update(importMap).digest('base64');
  return `default-src 'none'; script-src 'self' 'sha256-${hash}'; connect-src 'self'; img-src data:; base-uri 'none'; frame-ancestors 'none'`;
}

/** A file under `dir` named by a URL path, or null when the path leaves it or names no file. */
function fileUnder(dir: string, path: string): string | null {
  let file: string;
  try {
    file = resolve(dir, `.${decodeURIComponent(path)}`);
  } catch {
    return null; // a malformed escape
  }
  const inside = relative(dir, file);
  return inside && !inside.startsWith('..') && !inside.startsWith(sep) && existsSync(file) ? file : null;
}

/**
 * The handler of the test page and the library, read and built once (a README that lost the
 * snippet fails here, not in a request): answers true when it served the request, false for
 * every other request (the app's).
 */
function pageServer(): (req: IncomingMessage, res: ServerResponse) => boolean {
  const html = readFileSync(join(PAGE_DIR, 'index.html'), 'utf8');
  const pages: Record<string, { type: string; body: string; headers?: Record<string, string> }> = {
    '/passkey-page/': { type: 'text/html', body: html, headers: { 'content-security-policy': pageCsp(html) } },
    '/passkey-page/page.js': { type: 'text/javascript', body: readFileSync(join(PAGE_DIR, 'page.js'), 'utf8') },
    '/passkey-page/readme-snippet.js': { type: 'text/javascript', body: readmeSnippetModule(readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8')) },
  };
  return (req, res) => {
    if (req.method !== 'GET') return false;
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    const library = pathname.startsWith(LIBRARY_PATH) && pathname.endsWith('.js') ? fileUnder(LIBRARY_DIR, pathname.slice(LIBRARY_PATH.length - 1)) : null;
    const page = pages[pathname] ?? (library ? { type: 'text/javascript', body: readFileSync(library, 'utf8') } : null);
    if (!page) return false;
    res.writeHead(200, { 'content-type': `${page.type}; charset=utf-8`, 'cache-control': 'no-store', ...page.headers });
    res.end(page.body);
    return true;
  };
}

/** One operation the page sent, with its answer. */
interface Call {
  query: string;
  variables: Record<string, unknown>;
  status: number;
  body: { data?: Record<string, any> | null; errors?: unknown[] };
}

interface PasskeyPage {
  gql(query: string, variables?: Record<string, unknown>): Promise<Record<string, any>>;
  setAccessToken(token: string | null): void;
  calls(): Call[];
  addPasskey(): Promise<void>;
  signInWithPasskey(): Promise<void>;
  completeSignInWithPasskey(step: unknown): Promise<void>;
}
type PageWindow = Window & { passkeyPage: PasskeyPage };

const LOGIN_TWO_STEPS = `mutation Login($input: LoginInput!) { login(input: $input) {
  __typename
  ... on AuthPayload { accessToken }
  ... on SecondFactorRequired { challenge methods expiresIn passkeyOptions }
  ... on Error { code message }
} }`;
const MY_PASSKEYS = `query { me { id email secondFactors passkeys { id name } } }`;

/** CDP gives ids and keys as base64; WebAuthn's JSON as base64url. */
const base64url = (base64: string) => Buffer.from(base64, 'base64').toString('base64url');

describe.skipIf(skip)(`passkeys in headless Chromium's virtual authenticator${skip ? ` (skipped: ${CHROMIUM} is absent)` : ''}`, () => {
  let t: TestApp;
  let server: Listening;
  let browser: Browser;
  let page: Page;
  let cdp: CDPSession;
  let problems: string[];
  let origin: string;
  let authenticatorId: string;
  const email = uniqueEmail('passkey');
  let userId: string;

  /** A platform authenticator with resident keys that verifies its user (as a phone or laptop does). */
  async function addAuthenticator(): Promise<string> {
    const added = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
    });
    return added.authenticatorId;
  }

  /** A fresh load of the page: no access token, no calls yet (the authenticator stays). */
  async function openPage() {
    await page.goto(`${origin}/passkey-page/`);
    await page.waitForFunction(() => 'passkeyPage' in window);
  }

  const pageGql = (query: string, variables: Record<string, unknown> = {}) =>
    page.evaluate(([q, v]) => (window as unknown as PageWindow).passkeyPage.gql(q, v), [query, variables] as const);
  const setAccessToken = (token: string | null) => page.evaluate((tk) => (window as unknown as PageWindow).passkeyPage.setAccessToken(tk), token);

  /** The one call of the page that ran `field`. */
  async function callOf(field: string): Promise<Call> {
    const calls = await page.evaluate(() => (window as unknown as PageWindow).passkeyPage.calls());
    const matching = calls.filter((call) => new RegExp(`\\b${field}\\b`).test(call.query));
    expect(matching, JSON.stringify(calls)).toHaveLength(1);
    return matching[0]!;
  }

  /** A fresh page runs the README's passwordless sign-in; the finishPasskeySignIn call it made. */
  async function signInFromPage(): Promise<Call> {
    await openPage();
    await page.evaluate(() => (window as unknown as PageWindow).passkeyPage.signInWithPasskey());
    return callOf('finishPasskeySignIn');
  }

  /**
   * Asserts a refused sign-in as the client sees it (the typed error, HTTP 200, nothing else) and
   * that the audit log added `reason` to the refusals recorded before (`before`).
   */
  async function expectRefused(call: Call, before: string[], reason: string) {
    expect(call.status).toBe(200);
    expect(call.body).toEqual({
      data: { finishPasskeySignIn: { __typename: 'InvalidCredentialsError', code: 'INVALID_CREDENTIALS', message: expect.any(String) } },
    });
    expect(await loginFailureReasons()).toEqual([...before, reason].sort());
  }

  const credentials = async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;

  /** The reasons of the refused sign-ins so far, sorted (the audit log's; the client is told nothing more). */
  async function loginFailureReasons(): Promise<string[]> {
    const events = await t.database.db.select().from(authEvents).where(eq(authEvents.type, 'login_failure'));
    return events.map((event) => String(event.detail.reason)).sort();
  }

  beforeAll(async () => {
    // The page's origin must be known before the app is configured with it: the port comes first.
    const servePage = pageServer();
    server = await listen((req, res) => {
      if (!servePage(req, res)) void t.app(req, res);
    });
    // Browsers refuse an IP address as RP ID, and localhost is a secure context over http.
    origin = `http://localhost:${server.port}`;
    t = await createTestApp({ RP_ID: 'localhost', RP_ORIGINS: origin });
    browser = await launchChromium();
    page = await browser.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT);
    // Warnings too: @simplewebauthn/browser warns, and carries on, when called the wrong way.
    problems = await watchProblems(page, { warnings: true });
    cdp = await page.context().newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    authenticatorId = await addAuthenticator();
  }, BROWSER_TIMEOUT);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await t?.close();
  });

  it('adds a passkey with the README snippet: finishPasskeyRegistration answers a Passkey, held by the authenticator as a resident credential', async () => {
    await openPage();
    const registered = await pageGql(REGISTER, { input: { email, password: GOOD_PASSWORD, name: 'Ada' } });
    expect(registered.register.__typename, JSON.stringify(registered)).toBe('AuthPayload');
    userId = registered.register.user.id;
    await verifyAddressOf(t, registered.register.accessToken); // adding a factor needs a verified address
    const signedIn = await pageGql(LOGIN, { input: { email, password: GOOD_PASSWORD } });
    expect(signedIn.login.__typename, JSON.stringify(signedIn)).toBe('AuthPayload');
    await setAccessToken(signedIn.login.accessToken);

    await page.evaluate(() => (window as unknown as PageWindow).passkeyPage.addPasskey());

    const finished = await callOf('finishPasskeyRegistration');
    expect(finished.status).toBe(200);
    expect(finished.body).toEqual({ data: { finishPasskeyRegistration: { __typename: 'Passkey' } } });
    const creation = (await callOf('startPasskeyRegistration')).body.data!.startPasskeyRegistration;
    const held = await credentials();
    expect(held).toHaveLength(1);
    expect(held[0]).toMatchObject({ isResidentCredential: true, rpId: 'localhost' });
    expect(base64url(held[0]!.credentialId)).toBe((finished.variables.r as { id: string }).id);
    expect(base64url(held[0]!.userHandle!)).toBe(creation.user.id);
    expect((await pageGql(MY_PASSKEYS)).me).toMatchObject({ id: userId, secondFactors: ['PASSKEY'], passkeys: [{ name: 'This laptop' }] });
  }, BROWSER_TIMEOUT);

  it('signs in with it without a password or an email: an AuthPayload of that user whose access token says amr hwk+user', async () => {
    const finished = await signInFromPage();
    // Discoverable: no email sent, no credential id offered; the authenticator picked the passkey.
    const started = await callOf('startPasskeySignIn');
    expect(started.variables).toEqual({});
    expect(started.body.data!.startPasskeySignIn.allowCredentials ?? []).toEqual([]);
    expect(finished.status).toBe(200);
    const payload = finished.body.data!.finishPasskeySignIn;
    expect(payload, JSON.stringify(finished.body)).toMatchObject({ __typename: 'AuthPayload', accessToken: expect.any(String) });

    await setAccessToken(payload.accessToken);
    expect((await pageGql(MY_PASSKEYS)).me).toMatchObject({ id: userId, email });
    // User verified by the authenticator: a key held and the user verified, two factors (issue 14).
    expect(decodeJwt(payload.accessToken)).toMatchObject({ sub: userId, amr: ['hwk', 'user'] });
  }, BROWSER_TIMEOUT);

  it('passes the second factor after the password with the README snippet: completeSignIn(passkey) answers an AuthPayload', async () => {
    await openPage();
    const { login: step } = await pageGql(LOGIN_TWO_STEPS, { input: { email, password: GOOD_PASSWORD } });
    expect(step).toMatchObject({ __typename: 'SecondFactorRequired', methods: ['PASSKEY'] });
    expect(step.passkeyOptions.allowCredentials.map((c: { id: string }) => c.id)).toEqual([base64url((await credentials())[0]!.credentialId)]);

    await page.evaluate((s) => (window as unknown as PageWindow).passkeyPage.completeSignInWithPasskey(s), step);

    const completed = await callOf('completeSignIn');
    expect(completed.status).toBe(200);
    expect(completed.body).toEqual({ data: { completeSignIn: { __typename: 'AuthPayload' } } });
  }, BROWSER_TIMEOUT);

  it('refuses a copy of the passkey in a second authenticator whose counter lags the original: InvalidCredentialsError, not a 500', async () => {
    const refusedBefore = await loginFailureReasons();
    const [copy] = await credentials();
    // The original signs in once more, so the signature counter the server holds passes the copy's.
    expect((await signInFromPage()).body.data!.finishPasskeySignIn.__typename).toBe('AuthPayload');
    expect((await credentials())[0]!.signCount).toBeGreaterThan(copy!.signCount);

    // A clone: the same key and counter as before, in another authenticator.
    await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId });
    authenticatorId = await addAuthenticator();
    await cdp.send('WebAuthn.addCredential', { authenticatorId, credential: copy! });

    await expectRefused(await signInFromPage(), refusedBefore, 'passkey_counter');
  }, BROWSER_TIMEOUT);

  it('refuses the passkey once removed, though the authenticator still holds it: InvalidCredentialsError, not a 500', async () => {
    // The copy, its counter now ahead of the server's: it signs in, and that session removes it.
    const [copy] = await credentials();
    await cdp.send('WebAuthn.removeCredential', { authenticatorId, credentialId: copy!.credentialId });
    await cdp.send('WebAuthn.addCredential', { authenticatorId, credential: { ...copy!, signCount: copy!.signCount + 100 } });
    const signedIn = (await signInFromPage()).body.data!.finishPasskeySignIn;
    expect(signedIn.__typename, JSON.stringify(signedIn)).toBe('AuthPayload');
    await setAccessToken(signedIn.accessToken);
    const { me } = await pageGql(MY_PASSKEYS);
    expect(await pageGql(`mutation($id: ID!) { removePasskey(id: $id) }`, { id: me.passkeys[0].id })).toEqual({ removePasskey: true });

    const refusedBefore = await loginFailureReasons();

    await expectRefused(await signInFromPage(), refusedBefore, 'passkey_unknown_passkey');
    expect(await credentials()).toHaveLength(1);
  }, BROWSER_TIMEOUT);

  it('met no console error or warning, page error or CSP violation', () => {
    expect(problems).toEqual([]);
  });
});
