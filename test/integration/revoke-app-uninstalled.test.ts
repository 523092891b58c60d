// A key issued through the GitHub App, then the App uninstalled from the owner before the key is
// revoked: the revoke does not pass for done while the key is still on GitHub. The key stays
// `revoking` with its failure visible, its private half stays in Vault (the host key goes first),
// and once the App is installed again the revoke completes by itself.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NOT_INSTALLED_TTL_MS } from '../../src/hosts/github-credentials.ts';
import {
  auditCount,
  hostHasKey,
  type IssuedKey,
  issueKey,
  revokedView,
  vaultMetadataStatus,
} from '../support/revoke-checks.ts';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

let harness: Harness;
// The service's clock runs ahead of the real one by this much once the App is back, so the owner's
// remembered "not installed" lapses without the test sleeping through it.
let clockAheadMs = 0;

beforeAll(async () => {
  harness = await startHarness({ overrides: { clock: () => new Date(Date.now() + clockAheadMs) } });
});
afterEach(() => {
  harness.standIns.github.api.apps.setTokenTtl(3_600);
});
afterAll(async () => {
  await harness?.close();
});

const row = async (key: IssuedKey) => (await harness.service.container.keys.findById(key.id))!;

/** Uninstalls the sandbox App from `acme`, as the owner would from the organization's settings. */
async function uninstall(): Promise<void> {
  const { api, app } = harness.standIns.github;
  const installation = api.apps.installationForAccount(api.apps.findApp(app.id)!, 'acme')!;
  const answer = await fetch(`${api.url}/_sandbox/installations/${installation.id}`, { method: 'DELETE' });
  expect(answer.status).toBe(204);
}

function reinstall(): void {
  const { api, app } = harness.standIns.github;
  api.apps.install(app.id, { account: 'acme' });
  clockAheadMs += NOT_INSTALLED_TTL_MS + 1_000;
}

/** Waits until the revoke has failed `failures` times naming app-not-installed, and checks what is left. */
async function failingRevoke(key: IssuedKey, failures: number) {
  const failing = await eventually(
    async () => {
      const current = await row(key);
      return (
        current.status === 'revoking' &&
        current.attempts >= failures &&
        current.last_error === 'host github: app-not-installed (404)' &&
        current
      );
    },
    { timeoutMs: 20_000, what: `${failures} revoke attempt(s) failing with app-not-installed` },
  );
  // Nothing claims the key is gone: it is still on GitHub, and its private half still in Vault.
  expect(hostHasKey(harness, key)).toBe(true);
  expect(await vaultMetadataStatus(harness, key)).toBe(200);
  expect(await auditCount(harness, key.id, 'key.revoked')).toBe(0);
  // What the console shows of the key.
  const view = await harness.api('GET', `/v1/keys/${key.id}`);
  expect(view.body.status).toBe('revoking');
  expect(view.body.attempts).toBeGreaterThanOrEqual(failures);
  expect(view.body.lastError).toBe('host github: app-not-installed (404)');
  return failing;
}

async function expectRevokedEverywhere(key: IssuedKey, reason: string) {
  const view = await revokedView(harness, key.id, 20_000);
  expect(view.revokeReason).toBe(reason);
  expect(hostHasKey(harness, key)).toBe(false);
  expect(await vaultMetadataStatus(harness, key)).toBe(404);
  const done = await row(key);
  expect(done.last_error).toBeNull();
  expect(await auditCount(harness, key.id, 'key.revoked')).toBe(1);
}

describe('revoking a key after the GitHub App was uninstalled from its owner', () => {
  it('keeps a revoked-by-request key revoking while the App is gone, and revokes it once the App is back', async () => {
    const key = await issueKey(harness, {
      provider: 'github',
      repository: 'acme/models',
      jobId: 'uninstalled-delete',
      ttlSeconds: 600,
    });
    expect(hostHasKey(harness, key)).toBe(true);
    // The service holds the installation and a token minted for it when the App goes away.
    await uninstall();

    expect((await harness.api('DELETE', `/v1/keys/${key.id}`)).status).toBe(202);
    await failingRevoke(key, 2);

    reinstall();
    await expectRevokedEverywhere(key, 'manual');
  });

  it('keeps an expiring key revoking when its installation token must be minted anew, then revokes it', async () => {
    // Tokens that lapse before the key does: the revoke has to mint one, for an installation now gone.
    harness.standIns.github.api.apps.setTokenTtl(2);
    const key = await issueKey(harness, {
      provider: 'github',
      repository: 'acme/models',
      jobId: 'uninstalled-expiry',
      ttlSeconds: 3,
    });
    await uninstall();
    await failingRevoke(key, 2);

    reinstall();
    await expectRevokedEverywhere(key, 'expired');
  });
});
