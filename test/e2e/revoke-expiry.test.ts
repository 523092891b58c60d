// A key works for a real git client over real ssh until its TTL: it clones, and the host refuses its
// push as read-only. Once it expires it stops working, disappears from the host and from Vault, and
// says why it was revoked.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  gitSshCommand,
  HOST_REFUSALS,
  runGit,
  writeClientKey,
  writeKnownHosts,
} from '../support/git-client.ts';
import {
  auditCount,
  auditDetails,
  hostHasKey,
  hostKeyIds,
  issueKey,
  keyStatus,
  type Provider,
  revokedView,
  vaultMetadataStatus,
} from '../support/revoke-checks.ts';
import { type Harness, startHarness } from '../support/service-harness.ts';

// Long enough for a clone and a push attempt on a busy machine before the key expires.
const TTL_SECONDS = 10;
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

describe.each<Provider>(['github', 'gitlab', 'gitea'])('a %s key with a 10-second TTL', (provider) => {
  it('clones and is refused a push until expiry, then is revoked everywhere and git over ssh refuses it', async () => {
    const key = await issueKey(harness, {
      provider,
      repository: 'acme/models',
      jobId: `expiry-${provider}`,
      ttlSeconds: TTL_SECONDS,
      delivery: 'response',
    });
    // A key that stays valid shows that the refusal after expiry is the revoke, not the client setup.
    const control = await issueKey(harness, {
      provider,
      repository: 'acme/models',
      jobId: `expiry-control-${provider}`,
      ttlSeconds: 3_600,
      delivery: 'response',
    });
    const [issued] = await auditDetails(harness, key.id, 'key.issued');
    const hostKeyId = String(issued?.hostKeyId);
    const expiresAt = new Date(key.expiresAt).getTime();

    const knownHostsPath = await writeKnownHosts(root, key.knownHosts);
    const sshCommand = gitSshCommand(await writeClientKey(root, key.privateKey!), knownHostsPath);
    const live = join(root, `${provider}-live`);
    const clone = await runGit(['clone', '-q', key.cloneUrl, live], { sshCommand });
    expect(clone.code, clone.stderr).toBe(0);
    expect(await readFile(join(live, 'README.md'), 'utf8')).toBe('# acme/models\n');

    await writeFile(join(live, 'weights.bin'), 'not allowed\n');
    expect((await runGit(['-C', live, 'add', 'weights.bin'], { sshCommand })).code).toBe(0);
    expect((await runGit(['-C', live, 'commit', '-q', '-m', 'try a push'], { sshCommand })).code).toBe(0);
    const push = await runGit(['-C', live, 'push', 'origin', 'HEAD:main'], { sshCommand });
    expect(push.code).not.toBe(0);
    expect(push.stderr).toMatch(HOST_REFUSALS[provider].push);
    // All of the above happened while the key was live, so the push was refused as read-only.
    expect(Date.now()).toBeLessThan(expiresAt);
    expect(await keyStatus(harness, key.id)).toBe('active');

    const view = await revokedView(
      harness,
      key.id,
      Math.max(0, expiresAt - Date.now()) + REVOKE_BOUND_MS + 5_000,
    );
    expect(view.status).toBe('revoked');
    expect(view.revokeReason).toBe('expired');
    const overdueMs = new Date(view.revokedAt).getTime() - new Date(view.expiresAt).getTime();
    expect(overdueMs).toBeGreaterThanOrEqual(0);
    expect(overdueMs).toBeLessThan(REVOKE_BOUND_MS);

    expect(hostHasKey(harness, key)).toBe(false);
    expect(hostKeyIds(harness, provider, 'acme/models')).not.toContain(hostKeyId);
    expect(await vaultMetadataStatus(harness, key)).toBe(404);
    expect(await auditCount(harness, key.id, 'key.revoked')).toBe(1);

    const refused = await runGit(['clone', '-q', key.cloneUrl, join(root, `${provider}-revoked`)], {
      sshCommand,
    });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Permission denied \(publickey\)/);
    expect(refused.stderr).not.toMatch(/Host key verification failed/);

    const controlCommand = gitSshCommand(await writeClientKey(root, control.privateKey!), knownHostsPath);
    const allowed = await runGit(['clone', '-q', control.cloneUrl, join(root, `${provider}-control`)], {
      sshCommand: controlCommand,
    });
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(await readFile(join(root, `${provider}-control`, 'README.md'), 'utf8')).toBe('# acme/models\n');
  });
});
