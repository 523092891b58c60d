// The console's overview (two charts the console draws itself from GET /v1/stats) and its layout on
// phones, in Debian's Chromium against the real service, with screenshots at 1400 and 390 px.
import { mkdir } from 'node:fs/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  ARTIFACTS,
  type ConsoleBrowser,
  launchConsoleBrowser,
  signIn,
  visible,
} from '../support/console-browser.ts';
import { issueKey, keyStatus } from '../support/revoke-checks.ts';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

let harness: Harness;
let browser: ConsoleBrowser;

beforeAll(async () => {
  [harness, browser] = await Promise.all([startHarness(), launchConsoleBrowser()]);
  await mkdir(ARTIFACTS, { recursive: true });
  // One key issued and revoked at its job's end, one still active: something to draw and to list.
  const done = await issueKey(harness, {
    provider: 'github',
    repository: 'acme/models',
    jobId: 'ui-overview-1',
    ttlSeconds: 600,
  });
  await issueKey(harness, {
    provider: 'gitlab',
    repository: 'acme/datasets',
    jobId: 'ui-overview-2',
    ttlSeconds: 600,
  });
  expect((await harness.api('POST', '/v1/jobs/ui-overview-1/complete')).status).toBe(202);
  await eventually(async () => (await keyStatus(harness, done.id)) === 'revoked', { what: 'the revoke' });
});
afterAll(async () => {
  await browser?.close();
  await harness?.close();
});

const openConsole = () => browser.openConsole(harness.service.url);

it('draws the overview charts from /v1/stats: keys issued and revoked per hour, revoke latency', async () => {
  const { page, errors } = await openConsole();
  await page.setViewportSize({ width: 1400, height: 900 });
  await signIn(page, harness.tokens.auditor!);
  await eventually(async () => (await page.locator('#overview-counts rect.bar-issued').count()) > 0, {
    what: 'the issued bars',
  });
  expect(await page.locator('#overview-counts rect.bar-revoked').count()).toBeGreaterThan(0);
  expect(await page.locator('#overview-counts svg').getAttribute('aria-label')).toMatch(
    /^Keys per hour: \d+ issued, \d+ revoked$/,
  );
  expect(await page.locator('#overview-latency svg').getAttribute('aria-label')).toMatch(
    /^Revoke latency: p50 \d+\.\d s, p99 \d+\.\d s$/,
  );
  expect(await page.locator('#overview-latency circle.dot-p99').count()).toBeGreaterThan(0);
  await page.screenshot({ path: `${ARTIFACTS}/ui-console-1400.png`, fullPage: true });
  expect(errors).toEqual([]);
});

it('stays usable on a 390 and a 360 px wide phone: no sideways scrolling, Sign out in reach', async () => {
  const { page, errors } = await openConsole();
  await page.setViewportSize({ width: 390, height: 800 });
  await signIn(page, harness.tokens.auditor!);
  await eventually(async () => (await page.locator('#keys-body tr').count()) > 0, { what: 'the keys' });

  for (const width of [390, 360]) {
    await page.setViewportSize({ width, height: 800 });
    const overflow = await page.evaluate<number>(
      'document.documentElement.scrollWidth - document.documentElement.clientWidth',
    );
    expect(overflow, `no sideways scrolling at ${width} px`).toBe(0);
    const signOut = await page.getByRole('button', { name: 'Sign out' }).boundingBox();
    expect(signOut!.x + signOut!.width, `Sign out fits at ${width} px`).toBeLessThanOrEqual(width);
    // The checkbox sits just before its label, which stays on one line.
    const overdue = (await page.getByRole('checkbox', { name: 'Overdue only' }).boundingBox())!;
    const overdueLabel = (await page.locator('label[for="f-overdue"]').boundingBox())!;
    expect(overdueLabel.x - (overdue.x + overdue.width), 'checkbox next to its label').toBeLessThan(12);
    expect(overdueLabel.height, '"Overdue only" on one line').toBeLessThan(24);
    // Drawn for the narrow screen, the charts' axis labels stay legible.
    await eventually(
      async () =>
        ((await page.locator('#overview-counts text.axis').first().boundingBox())?.height ?? 0) >= 9,
      { what: `legible axis labels at ${width} px` },
    );
    if (width === 390) await page.screenshot({ path: `${ARTIFACTS}/ui-console-390.png`, fullPage: true });
  }
  await page.getByRole('button', { name: 'Sign out' }).click();
  expect(await visible(page, '#view-sign-in')).toBe(true);
  expect(errors).toEqual([]);
});
