import { existsSync } from 'node:fs';
import puppeteer, { type Browser, type ConsoleMessage, type Page } from 'puppeteer-core';

/** Why the browser tests do not run when no browser is found: said, never silently skipped. */
export const NO_BROWSER_REASON = "no chromium: install Debian's chromium (.ci/run does)";

/** Where a browser is looked for: CHROMIUM_PATH first, then Debian's package. */
const CANDIDATES = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'];

/** The browser the tests drive, or undefined when none is installed. */
export const chromiumPath: string | undefined = CANDIDATES.find(
  (path): path is string => path !== undefined && path !== '' && existsSync(path),
);

/**
 * Starts the browser headless, in a fresh profile of its own. Chromium's sandbox refuses to run as root (CI
 * containers): only then is it turned off.
 */
export async function launchBrowser(): Promise<Browser> {
  if (!chromiumPath) throw new Error(NO_BROWSER_REASON);
  const asRoot = process.getuid?.() === 0;
  return puppeteer.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [...(asRoot ? ['--no-sandbox'] : []), '--disable-dev-shm-usage', '--no-first-run', '--mute-audio'],
  });
}

/** What went wrong in a page: console errors and uncaught exceptions, as text. */
export interface PageProblems {
  readonly errors: string[];
}

/**
 * Collects a page's console errors and uncaught exceptions. The browser's own note on a request answered with an
 * error status ("Failed to load resource: ... 401") is a console error too; `allowStatus` lets a test that
 * expects such an answer leave those out.
 */
export function watchProblems(page: Page, allowStatus: readonly number[] = []): PageProblems {
  const errors: string[] = [];
  const expected = (message: ConsoleMessage) =>
    allowStatus.some((status) => message.text().includes(`the server responded with a status of ${status}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !expected(message)) errors.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => errors.push(`page: ${error instanceof Error ? error.message : String(error)}`));
  return { errors };
}

/**
 * The little of the DOM that the tests' page functions use: the project compiles without the DOM library. Such a
 * function runs in the browser, so it may name `document` (declared with these types in the test) but import
 * nothing.
 */
export interface PageElement {
  readonly textContent: string | null;
  readonly hidden: boolean;
  readonly dataset: Readonly<Record<string, string | undefined>>;
  getAttribute(name: string): string | null;
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): ArrayLike<PageElement> & Iterable<PageElement>;
}

export interface PageStorage {
  getItem(key: string): string | null;
}
