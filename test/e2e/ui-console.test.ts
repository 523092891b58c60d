// The audit console in a real browser (Debian's Chromium through playwright-core) against the real
// service: an auditor signs in, filters, follows a key to its audit timeline by keyboard, exports it.
import { mkdir, readFile } from 'node:fs/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SANDBOX_POLICY, sandboxAuthConfig } from '../../sandbox/stand-ins.ts';
import { startGithubRun } from '../support/ci-webhooks.ts';
import {
  ARTIFACTS,
  type ConsoleBrowser,
  launchConsoleBrowser,
  rowTexts,
  signIn,
  text,
  visible,
} from '../support/console-browser.ts';
import { eventually, type Harness, startHarness, TEST_CALLERS_RULE } from '../support/service-harness.ts';

let harness: Harness;
let browser: ConsoleBrowser;

beforeAll(async () => {
  [harness, browser] = await Promise.all([
    startHarness({
      // The test tokens, and GitHub Actions jobs with their OIDC tokens, whose keys carry a binding.
      fileConfig: (standIns) => ({
        audit: { checkpointPeriodSeconds: 1 },
        auth: sandboxAuthConfig(standIns).auth,
        policy: [TEST_CALLERS_RULE, ...SANDBOX_POLICY],
      }),
    }),
    launchConsoleBrowser(),
  ]);
  await mkdir(ARTIFACTS, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await harness?.close();
});

const openConsole = () => browser.openConsole(harness.service.url);

async function issue(provider: string, repository: string, jobId: string, ttlSeconds = 600) {
  const issued = await harness.api('POST', '/v1/keys', { body: { provider, repository, jobId, ttlSeconds } });
  expect(issued.status).toBe(201);
  return issued.body.id as string;
}

async function statusOf(id: string): Promise<string> {
  return (await harness.api('GET', `/v1/keys/${id}`)).body.status;
}

it('lets an auditor filter keys, open a revoked key by keyboard and see its whole audit timeline', async () => {
  const modelsKey = await issue('github', 'acme/models', 'ui-models-1');
  const datasetsKey = await issue('gitlab', 'acme/datasets', 'ui-datasets-1');
  expect((await harness.api('DELETE', `/v1/keys/${modelsKey}`)).status).toBe(202);
  await eventually(async () => (await statusOf(modelsKey)) === 'revoked', { what: 'the revoke' });

  const { page, errors } = await openConsole();
  expect(await visible(page, '#view-sign-in')).toBe(true);
  await signIn(page, harness.tokens.auditor!);

  await eventually(async () => (await rowTexts(page)).length === 2, { what: 'both keys in the table' });
  const all = (await rowTexts(page)).join('\n');
  expect(all).toContain('acme/models');
  expect(all).toContain('acme/datasets');
  expect(all).toContain('Revoked');
  expect(all).toContain('Active');
  expect(await page.evaluate<number>('localStorage.length')).toBe(0);
  await eventually(
    async () => (await page.locator('#chain-state').getAttribute('data-state')) === 'verified',
    {
      what: 'the chain to show as verified',
    },
  );
  await eventually(async () => (await text(page, '#chain-checkpoint')).includes('signature valid'), {
    what: 'a signed checkpoint',
  });
  expect(await text(page, '#chain-text')).toMatch(/^Chain verified · \d+ events checked$/);
  await page.screenshot({ path: `${ARTIFACTS}/ui-console.png` });

  const repository = page.getByLabel('Repository');
  await repository.fill('acme/models');
  await repository.press('Enter');
  await eventually(
    async () => {
      const rows = await rowTexts(page);
      return rows.length === 1 && rows[0]!.includes('acme/models');
    },
    { what: 'only the acme/models key' },
  );
  expect(page.url()).toContain('#/keys?repository=acme%2Fmodels');
  expect(await page.locator('#keys-body tr').getAttribute('data-id')).toBe(modelsKey);
  expect(await page.locator(`#keys-body tr[data-id="${datasetsKey}"]`).count()).toBe(0);
  expect(await text(page, '#keys-body tr')).toContain('Revoked');

  // Tab on from the filter form until the key's row has focus, then open it with Enter.
  await eventually(
    async () => {
      await page.keyboard.press('Tab');
      return (await page.locator('#keys-body tr:focus').count()) === 1;
    },
    { what: 'the key row to take keyboard focus', timeoutMs: 5_000, intervalMs: 0 },
  );
  await page.keyboard.press('Enter');
  await eventually(async () => page.url().endsWith(`#/keys/${modelsKey}`), { what: 'the key page' });
  // The page moves focus to its heading once the key has loaded, which may follow the URL change.
  await eventually(async () => (await page.evaluate<string>('document.activeElement.id')) === 'key-heading', {
    what: 'focus on the key heading',
    timeoutMs: 5_000,
  });

  const lifecycle = ['key.requested', 'key.issued', 'key.revoke_requested', 'key.revoked'];
  const actions = await eventually(
    async () => {
      const shown = await page.locator('#timeline .event-action').allTextContents();
      return lifecycle.every((action) => shown.includes(action)) && shown;
    },
    { what: 'the timeline' },
  );
  expect(actions.filter((action) => lifecycle.includes(action))).toEqual(lifecycle);
  expect(await text(page, '#key-heading')).toContain('acme/models');
  const facts = await text(page, '#key-facts');
  expect(await text(page, '#key-facts dt:text-is("Bound to") + dd')).toBe('—');
  expect(facts).toContain('Revoked');
  expect(facts).toContain('token:ci');
  expect(facts).toContain(modelsKey);
  await page.screenshot({ path: `${ARTIFACTS}/ui-console-key.png` });

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Export timeline (NDJSON)' }).click(),
  ]);
  expect(download.suggestedFilename()).toMatch(/^audit-events-.*\.ndjson$/);
  const exported = (await readFile(await download.path(), 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  expect(exported.map((event) => event.action).filter((action) => lifecycle.includes(action))).toEqual(
    lifecycle,
  );
  expect(exported.every((event) => event.keyId === modelsKey)).toBe(true);
  const [csv] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Export timeline (CSV)' }).click(),
  ]);
  expect(csv.suggestedFilename()).toMatch(/\.csv$/);
  const csvLines = (await readFile(await csv.path(), 'utf8')).trim().split(/\r?\n/);
  expect(csvLines[0]).toContain('seq');
  expect(csvLines.filter((line) => line.includes('key.revoked'))).toHaveLength(1);

  await page.keyboard.press('Escape');
  await eventually(async () => page.url().endsWith('#/keys?repository=acme%2Fmodels'), {
    what: 'the filtered list again',
  });
  await eventually(
    async () =>
      (await page.evaluate<string | null>("document.activeElement.getAttribute('data-id')")) === modelsKey,
    { what: 'focus back on the row that was opened' },
  );
  expect(errors).toEqual([]);

  // Trusted Types: the page itself refuses to turn a string into markup.
  expect(
    await page.evaluate<string>(
      "(() => { try { document.body.innerHTML = '<img src=x>'; return 'allowed'; } catch (e) { return e.name; } })()",
    ),
  ).toBe('TypeError');
});

it("shows on a CI job's key the run and job whose end revokes it", async () => {
  const [job] = await startGithubRun(harness.standIns, 'acme/models');
  const issued = await harness.api('POST', '/v1/keys', {
    token: job!.idToken,
    body: { provider: 'github', repository: 'acme/models', jobId: 'ui-bound-1', ttlSeconds: 600 },
  });
  expect(issued.status, issued.text).toBe(201);

  const { page, errors } = await openConsole();
  await signIn(page, harness.tokens.auditor!);
  await eventually(async () => (await rowTexts(page)).some((row) => row.includes('ui-bound-1')), {
    what: 'the bound key in the table',
  });
  await page.locator(`#keys-body tr[data-id="${issued.body.id}"]`).click();
  const bound = page.locator('#key-facts dt:text-is("Bound to") + dd');
  await eventually(async () => (await bound.count()) === 1 && (await bound.textContent()) !== '—', {
    what: 'the binding on the key page',
  });
  expect(await bound.textContent()).toBe(
    `GitHub Actions (github) · acme/models · run ${job!.runId} attempt 1 · job ${job!.jobId}`,
  );
  await page.screenshot({ path: `${ARTIFACTS}/ui-console-binding.png` });
  expect(errors).toEqual([]);
});

it('flags a key that outlived its expiry and whose revoke keeps failing, live and not by colour alone', async () => {
  const { page, errors } = await openConsole();
  await signIn(page, harness.tokens.auditor!);
  await page.getByLabel('Job').fill('ui-stuck-1');
  await page.getByLabel('Job').press('Enter');
  await eventually(async () => page.url().includes('jobId=ui-stuck-1'), { what: 'the job filter' });

  harness.standIns.github.api.faults.add({ status: 500, count: 10_000, method: 'DELETE' });
  try {
    const stuck = await issue('github', 'acme/datasets', 'ui-stuck-1', 1);
    await eventually(async () => (await statusOf(stuck)) === 'revoking', {
      what: 'the expiry revoke to start',
    });

    const row = page.locator(`#keys-body tr[data-id="${stuck}"]`);
    await eventually(
      async () => {
        const shown = (await row.count()) === 1 ? ((await row.textContent()) ?? '') : '';
        return shown.includes('Overdue') && shown.includes('Revoking');
      },
      { what: 'the polled table to show the key revoking past its expiry' },
    );
    expect(await row.getAttribute('class')).toContain('row-attention');

    // From the first failed attempt on, with the attempts and the last error, not once all are spent.
    await eventually(
      async () => /Revoke failing \(\d+ failed attempts?\)/.test((await row.textContent()) ?? ''),
      {
        what: 'the revoke failure to show without a reload',
      },
    );
    const key = (await harness.api('GET', `/v1/keys/${stuck}`)).body;
    expect(key.status).toBe('revoking');
    expect(await row.locator('.flag-detail').textContent()).toBe(key.lastError);
    expect(await text(page, '#keys-count')).toContain('1 needs attention');
    await row.focus();
    await page.screenshot({ path: `${ARTIFACTS}/ui-console-attention.png` });
  } finally {
    harness.standIns.github.api.faults.clear();
  }
  expect(errors).toEqual([]);
});

it('narrows by caller and by creation date, which the keys API itself cannot filter by', async () => {
  const other = await harness.api('POST', '/v1/keys', {
    body: { provider: 'gitlab', repository: 'acme/models', jobId: 'ui-other-1', ttlSeconds: 600 },
    token: harness.tokens['other-ci']!,
  });
  expect(other.status).toBe(201);
  const day = String(other.body.createdAt).slice(0, 10);
  const nextDay = new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);

  const { page, errors } = await openConsole();
  await signIn(page, harness.tokens.auditor!);
  await eventually(async () => (await rowTexts(page)).length >= 1, { what: 'the keys' });
  await page.getByLabel('Caller').fill('token:other-ci');
  await page.getByLabel('Created from').fill(day);
  await page.getByLabel('Created to').fill(day);
  // No button to press: the filters apply once typing pauses, and the URL follows them.
  await eventually(async () => page.url().includes('caller=token%3Aother-ci'), { what: 'the URL to follow' });
  await eventually(
    async () => {
      const rows = page.locator('#keys-body tr');
      return (await rows.count()) === 1 && (await rows.getAttribute('data-id')) === other.body.id;
    },
    { what: 'only the other caller’s key' },
  );

  await page.getByLabel('Created from').fill(nextDay);
  await page.getByLabel('Created to').fill(nextDay);
  await eventually(async () => visible(page, '#keys-empty'), { what: 'no keys created on the next day' });
  expect(await rowTexts(page)).toEqual([]);
  expect(errors).toEqual([]);
});

it('keeps a wrong token on the sign-in form with the reason, and sends an expired session back there', async () => {
  const { page } = await openConsole();
  await signIn(page, 'dkr_not-a-real-token');
  await eventually(async () => (await text(page, '#sign-in-error')).startsWith('Sign-in failed'), {
    what: 'the sign-in error',
  });
  expect(await text(page, '#sign-in-error')).toContain('the API token is unknown, revoked or expired');
  expect(await visible(page, '#view-sign-in')).toBe(true);
  expect(await visible(page, '#view-keys')).toBe(false);
  expect(await page.evaluate<number>('sessionStorage.length')).toBe(0);
  await page.screenshot({ path: `${ARTIFACTS}/ui-console-sign-in.png` });

  await signIn(page, harness.tokens.auditor!);
  await eventually(async () => visible(page, '#view-keys'), { what: 'the keys view' });
  await page.evaluate("sessionStorage.setItem('deploykey.auditToken', 'dkr_revoked-meanwhile')");
  await page.reload();
  await eventually(async () => (await text(page, '#sign-in-error')).startsWith('Signed out'), {
    what: 'the 401 to end the session',
  });
  expect(await visible(page, '#view-sign-in')).toBe(true);
  expect(await page.evaluate<number>('sessionStorage.length')).toBe(0);
});

it('shows an API error from the keys API in the status area', async () => {
  const { page } = await openConsole();
  await signIn(page, harness.tokens.auditor!);
  await eventually(async () => visible(page, '#view-keys'), { what: 'the keys view' });
  await page.getByLabel('Job').fill('not a job id!');
  await page.getByLabel('Job').press('Enter');
  await eventually(async () => visible(page, '#alert'), { what: 'the error alert' });
  expect(await text(page, '#alert-text')).toMatch(
    /^Could not load the keys: querystring\/jobId must be 1 to 128 characters of A-Z/,
  );
  expect(await visible(page, '#view-keys')).toBe(true);
});

it('serves only its own files, with their content types and a strict Content-Security-Policy', async () => {
  const types: Record<string, string> = {
    '/ui': 'text/html',
    '/ui/app.js': 'text/javascript',
    '/ui/styles.css': 'text/css',
    '/ui/favicon.svg': 'image/svg+xml',
  };
  for (const [path, type] of Object.entries(types)) {
    const response = await harness.api('GET', path, { token: null });
    expect(response.status, path).toBe(200);
    expect(response.headers.get('content-type'), path).toContain(type);
    expect(response.headers.get('x-content-type-options'), path).toBe('nosniff');
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
  }
  const page = await harness.api('GET', '/ui', { token: null });
  expect(page.text).not.toMatch(/<script>|<style>|\sstyle=|\son[a-z]+=/i);
  for (const path of ['/ui/ui.routes.ts', '/ui/..%2Fhttp%2Fapp.ts', '/ui/nothing.js']) {
    const response = await harness.api('GET', path, { token: null });
    expect(response.status, path).toBe(404);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
  }
});
