// The console's chain status in a real browser: a chain holding an API token created with an expiry
// shows verified, and once rows are edited it turns red and says how many events are bad.
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

let harness: Harness;
let browser: Browser;
beforeAll(async () => {
  [harness, browser] = await Promise.all([
    startHarness({ worker: false }),
    chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    }),
  ]);
});
afterAll(async () => {
  await browser?.close();
  await harness?.close();
});

async function tamper(statement: string) {
  const client = await harness.database.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('ALTER TABLE audit_events DISABLE TRIGGER USER');
    await client.query(statement);
    await client.query('ALTER TABLE audit_events ENABLE TRIGGER USER');
    await client.query('COMMIT');
  } finally {
    client.release();
  }
}

it('shows a chain with an expiring token verified, and an edited chain red with its bad events', async () => {
  const created = await harness.api('POST', '/v1/admin/tokens', {
    body: { name: 'console-expiring', role: 'auditor', expiresInSeconds: 3_600 },
    token: harness.tokens.admin!,
  });
  expect(created.status, created.text).toBe(201);

  const page = await (await browser.newContext()).newPage();
  await page.goto(`${harness.service.url}/ui`);
  const field = page.getByLabel('Auditor token');
  await field.fill(harness.tokens.auditor!);
  await field.press('Enter');
  const state = () => page.locator('#chain-state').getAttribute('data-state');
  await eventually(async () => (await state()) === 'verified', { what: 'the chain to show as verified' });

  await tamper(`UPDATE audit_events SET actor = 'token:nobody' WHERE seq IN (1, 2)`);
  // The auditor's refused request is audited: the head moves, so the next verification walks again.
  await harness.api('GET', '/v1/admin/tokens', { token: harness.tokens.auditor! });
  await page.locator('#chain-verify').click();
  await eventually(async () => (await state()) === 'broken', { what: 'the chain to show as broken' });
  expect(await page.locator('#chain-text').textContent()).toMatch(
    /^Chain broken at event #1: hash of seq 1 does not match its contents \(and 1 more bad event\)$/,
  );
  // Evaluated in the page, where getComputedStyle exists.
  const background = await page.evaluate<string>(
    "getComputedStyle(document.getElementById('chain-state')).backgroundColor",
  );
  expect(background).toBe('rgb(253, 232, 232)');
}, 60_000);
