/**
 * Debian's Chromium for the tests of test/browser: found at /usr/bin/chromium (no browser
 * download), launched headless through playwright-core, each page watched for what it reports.
 */
import { existsSync } from 'node:fs';
import { expect } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

// Generous: starting Chromium and a page's scripts takes seconds on a busy 2-core machine.
export const BROWSER_TIMEOUT = 120_000;
export const STEP_TIMEOUT = 60_000;

/**
 * Whether a browser test file is skipped: outside CI, on a machine without Debian's chromium
 * (with a warning). CI must have it (.ci/run installs it), so there a missing browser fails in
 * launchChromium instead of passing silently.
 */
export function skipWithoutChromium(file: string): boolean {
  const skip = !existsSync(CHROMIUM) && !process.env.CI;
  if (skip) console.warn(`${file} skipped: ${CHROMIUM} is absent (apt-get install chromium)`);
  return skip;
}

/** Headless Chromium with a fresh temporary profile (playwright gives each launch its own). */
export async function launchChromium(): Promise<Browser> {
  expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: CI must install Debian's chromium (see .ci/run)`).toBe(true);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: BROWSER_TIMEOUT,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * Collects what goes wrong on `page` from now on: console errors (and warnings, with
 * `warnings`: a library's "not called correctly"), uncaught page errors and
 * Content-Security-Policy violations. The returned list fills as they happen.
 */
export async function watchProblems(page: Page, options: { warnings?: boolean } = {}): Promise<string[]> {
  const problems: string[] = [];
  const levels = options.warnings ? ['error', 'warning'] : ['error'];
  page.on('console', (message) => {
    if (levels.includes(message.type())) problems.push(`console ${message.type()}: ${message.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  await page.exposeFunction('reportCspViolation', (text: string) => problems.push(`CSP: ${text}`));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      (window as unknown as { reportCspViolation(text: string): void }).reportCspViolation(`${e.violatedDirective} blocked ${e.blockedURI}`);
    });
  });
  return problems;
}
