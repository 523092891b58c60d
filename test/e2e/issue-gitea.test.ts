// A self-hosted Gitea/Forgejo, end to end with the real `git` and `ssh` clients under
// StrictHostKeyChecking=yes: the issued key clones, cannot push, and once the job completes it is
// gone from the host and from Vault, and the same clone is refused.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gitSshCommand, runGit, writeClientKey, writeKnownHosts } from '../support/git-client.ts';
import {
  auditCount,
  hostHasKey,
  issueKey,
  revokedView,
  vaultMetadataStatus,
} from '../support/revoke-checks.ts';
import { type Harness, startHarness } from '../support/service-harness.ts';

let harness: Harness;
let root: string;

beforeAll(async () => {
  harness = await startHarness();
  root = await mkdtemp(join(tmpdir(), 'issue-gitea-'));
});
afterAll(async () => {
  await harness?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('a key issued on a Gitea host', () => {
  it('clones read-only, refuses a push, and after completion is gone and refused', async () => {
    const jobId = 'gitea-e2e-complete';
    const key = await issueKey(harness, {
      provider: 'gitea',
      repository: 'acme/models',
      jobId,
      ttlSeconds: 3_600,
      delivery: 'response',
    });
    expect(key.cloneUrl).toBe(harness.standIns.gitea.ssh.cloneUrl('acme/models'));
    expect(key.knownHosts).toEqual(harness.standIns.gitea.ssh.knownHostsLines);
    const [stored, ...others] = harness.standIns.gitea.state.keysWithBlob(
      (key as unknown as { publicKey: string }).publicKey,
    );
    expect(others).toEqual([]);
    expect(stored).toMatchObject({ readOnly: true });
    expect(stored?.title).toBe(`deploykey-rotator:${key.id} job=${jobId}`);

    const sshCommand = gitSshCommand(
      await writeClientKey(root, key.privateKey!),
      await writeKnownHosts(root, key.knownHosts),
    );
    const dir = join(root, 'clone');
    const clone = await runGit(['clone', key.cloneUrl, dir], { sshCommand });
    expect(clone.code, clone.stderr).toBe(0);
    expect(await readFile(join(dir, 'README.md'), 'utf8')).toBe('# acme/models\n');

    await writeFile(join(dir, 'weights.bin'), 'not allowed\n');
    expect((await runGit(['-C', dir, 'add', 'weights.bin'], { sshCommand })).code).toBe(0);
    expect((await runGit(['-C', dir, 'commit', '-q', '-m', 'try a push'], { sshCommand })).code).toBe(0);
    const push = await runGit(['-C', dir, 'push', 'origin', 'HEAD:main'], { sshCommand });
    expect(push.code).not.toBe(0);
    expect(push.stderr).toMatch(/is not authorized to write acme\/models/);

    const done = await harness.api('POST', `/v1/jobs/${jobId}/complete`);
    expect(done.status, done.text).toBeLessThan(300);
    const view = await revokedView(harness, key.id);
    expect(view).toMatchObject({ status: 'revoked', revokeReason: 'job-completed' });
    expect(hostHasKey(harness, key)).toBe(false);
    expect(await vaultMetadataStatus(harness, key)).toBe(404);
    expect(await auditCount(harness, key.id, 'key.revoked')).toBe(1);

    const again = await runGit(['clone', '-q', key.cloneUrl, join(root, 'after')], { sshCommand });
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/Permission denied \(publickey\)/);
    expect(again.stderr).not.toMatch(/Host key verification failed/);
  });
});
