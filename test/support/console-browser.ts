// The audit console in Debian's Chromium through playwright-core: fresh tabs that record every
// console error and page crash, and the few ways the console tests read the page.
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { expect } from 'vitest';

export const ARTIFACTS = '.artifacts';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

export interface ConsoleBrowser {
  /** A fresh browser tab on a laptop-sized screen, opened on the service's console. */
  openConsole(serviceUrl: string): Promise<{ page: Page; errors: string[] }>;
  close(): Promise<void>;
}

export async function launchConsoleBrowser(): Promise<ConsoleBrowser> {
  const browser: Browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
  });
  const contexts: BrowserContext[] = [];
  return {
    async openConsole(serviceUrl) {
      const context = await browser.newContext({
        viewport: { width: 1366, height: 768 },
        acceptDownloads: true,
      });
      contexts.push(context);
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error') errors.push(message.text());
      });
      page.on('pageerror', (error) => errors.push(error.message));
      const response = await page.goto(`${serviceUrl}/ui`);
      expect(response?.status()).toBe(200);
      expect(response?.headers()['content-security-policy']).toContain("default-src 'self'");
      return { page, errors };
    },
    async close() {
      for (const context of contexts) await context.close();
      await browser.close();
    },
  };
}

export async function signIn(page: Page, token: string) {
  const field = page.getByLabel('Auditor token');
  await field.fill(token);
  await field.press('Enter');
}

export const rowTexts = (page: Page) => page.locator('#keys-body tr').allTextContents();
export const visible = (page: Page, selector: string) => page.locator(selector).isVisible();
export const text = async (page: Page, selector: string) =>
  (await page.locator(selector).textContent()) ?? '';
