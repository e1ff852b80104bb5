/**
 * GraphiQL as a person uses it, in Debian's Chromium under the server's real CSP: the example
 * document is there, Register runs from the editor, the token goes into the Headers tab, Me
 * answers with the user; nothing is logged as an error or blocked by the CSP on the way.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { BROWSER_TIMEOUT, CHROMIUM, launchChromium, skipWithoutChromium, STEP_TIMEOUT, watchProblems } from '../support/chromium.js';
import { listen, type Listening } from '../support/listen.js';

const skip = skipWithoutChromium('test/browser/graphiql.test.ts');

describe.skipIf(skip)(`GraphiQL in headless Chromium${skip ? ` (skipped: ${CHROMIUM} is absent)` : ''}`, () => {
  let t: TestApp;
  let server: Listening;
  let browser: Browser;
  let page: Page;
  let problems: string[];

  beforeAll(async () => {
    t = await createTestApp();
    server = await listen(t.app);
    browser = await launchChromium();
    // Tall enough that the editors render the whole example document (Monaco draws only visible lines).
    page = await browser.newPage({ viewport: { width: 1400, height: 2000 } });
    page.setDefaultTimeout(STEP_TIMEOUT);
    problems = await watchProblems(page);
  }, BROWSER_TIMEOUT);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await t?.close();
  });

  /** The text of a GraphiQL editor as shown (Monaco renders spaces as no-break spaces). */
  const editorText = (selector: string) => page.locator(selector).innerText().then((text) => text.replace(/\u00a0/g, ' '));
  const queryEditor = () => page.locator('.graphiql-query-editor');

  /** Puts the cursor on the line that opens `operation` and runs it with Ctrl-Enter, as a user would. */
  async function run(operation: string): Promise<Record<string, any>> {
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/graphql') && r.request().postDataJSON()?.operationName === operation),
      (async () => {
        await queryEditor().locator('.view-line', { hasText: new RegExp(`^(query|mutation)\\s+${operation}\\s*\\{`) }).click();
        await page.keyboard.press('Control+Enter');
      })(),
    ]);
    return response.json();
  }

  it('opens on the example document, with the Authorization placeholder in the Headers tab', async () => {
    await page.goto(`${server.url}/graphql`);
    await expect.poll(() => editorText('.graphiql-query-editor'), { timeout: STEP_TIMEOUT }).toContain('mutation Register {');
    const document = await editorText('.graphiql-query-editor');
    expect(document).toContain('mutation Login {');
    expect(document).toContain('query Me {');
    expect(await editorText('.graphiql-editor-tool .graphiql-editor:not(.hidden)')).toContain('"Authorization": "Bearer <accessToken from login>"');
  }, BROWSER_TIMEOUT);

  it('registers from the editor, then answers me once the header holds the access token', async () => {
    const registered = await run('Register');
    expect(registered.data.register).toMatchObject({ __typename: 'AuthPayload', user: { email: 'ada@example.com' } });
    await expect.poll(() => editorText('.graphiql-response'), { timeout: STEP_TIMEOUT }).toContain('"__typename": "AuthPayload"');

    // Replace the placeholder in the Headers tab with the token from the result.
    await page.locator('.graphiql-editor-tool .graphiql-editor:not(.hidden) .view-lines').click();
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    // Typed key by key: the editor closes brackets and quotes as they open, and types over them.
    const headers = JSON.stringify({ Authorization: `Bearer ${registered.data.register.accessToken}` });
    await page.keyboard.type(headers);
    await expect.poll(() => editorText('.graphiql-editor-tool .graphiql-editor:not(.hidden) .view-lines'), { timeout: STEP_TIMEOUT }).toBe(headers);

    const me = await run('Me');
    expect(me).toEqual({ data: { me: expect.objectContaining({ email: 'ada@example.com' }) } });
    await expect.poll(() => editorText('.graphiql-response'), { timeout: STEP_TIMEOUT }).toContain('"email": "ada@example.com"');
  }, BROWSER_TIMEOUT);

  it('met no console error, page error or CSP violation', () => {
    expect(problems).toEqual([]);
  });
});
