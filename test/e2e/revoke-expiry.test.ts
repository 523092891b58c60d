// A key that reaches its TTL stops working for a real git client over real ssh, disappears from the
// host and from Vault, and says why it was revoked.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gitSshCommand, runGit, writeClientKey, writeKnownHosts } from '../support/git-client.ts';
import {
  auditCount,
  auditDetails,
  hostHasKey,
  hostKeyIds,
  issueKey,
  type Provider,
  revokedView,
  vaultMetadataStatus,
} from '../support/revoke-checks.ts';
import { type Harness, startHarness } from '../support/service-harness.ts';

const TTL_SECONDS = 2;
// The delayed job fires at expiry; a revoke takes a few host and Vault round trips after that.
const REVOKE_BOUND_MS = 6_000;

let harness: Harness;
let root: string;

beforeAll(async () => {
  harness = await startHarness();
  root = await mkdtemp(join(tmpdir(), 'revoke-expiry-'));
});
afterAll(async () => {
  await harness?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

describe.each<Provider>(['github', 'gitlab', 'gitea'])('a %s key with a 2-second TTL', (provider) => {
  it('is revoked everywhere within seconds after expiry, and git over ssh refuses it', async () => {
    const key = await issueKey(harness, {
      provider,
      repository: 'acme/models',
      jobId: `expiry-${provider}`,
      ttlSeconds: TTL_SECONDS,
      delivery: 'response',
    });
    // A key that stays valid shows that the refusal below is the revoke, not the client setup.
    const control = await issueKey(harness, {
      provider,
      repository: 'acme/models',
      jobId: `expiry-control-${provider}`,
      ttlSeconds: 3_600,
      delivery: 'response',
    });
    const [issued] = await auditDetails(harness, key.id, 'key.issued');
    const hostKeyId = String(issued?.hostKeyId);

    const view = await revokedView(harness, key.id, TTL_SECONDS * 1000 + REVOKE_BOUND_MS + 5_000);
    expect(view.status).toBe('revoked');
    expect(view.revokeReason).toBe('expired');
    const overdueMs = new Date(view.revokedAt).getTime() - new Date(view.expiresAt).getTime();
    expect(overdueMs).toBeGreaterThanOrEqual(0);
    expect(overdueMs).toBeLessThan(REVOKE_BOUND_MS);

    expect(hostHasKey(harness, key)).toBe(false);
    expect(hostKeyIds(harness, provider, 'acme/models')).not.toContain(hostKeyId);
    expect(await vaultMetadataStatus(harness, key)).toBe(404);
    expect(await auditCount(harness, key.id, 'key.revoked')).toBe(1);

    const knownHostsPath = await writeKnownHosts(root, key.knownHosts);
    const clone = async (privateKey: string, dir: string) => {
      const sshCommand = gitSshCommand(await writeClientKey(root, privateKey), knownHostsPath);
      return runGit(['clone', '-q', key.cloneUrl, join(root, dir)], { sshCommand });
    };
    const refused = await clone(key.privateKey!, `${provider}-revoked`);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Permission denied \(publickey\)/);
    expect(refused.stderr).not.toMatch(/Host key verification failed/);

    const allowed = await clone(control.privateKey!, `${provider}-control`);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(await readFile(join(root, `${provider}-control`, 'README.md'), 'utf8')).toBe('# acme/models\n');
  });
});
