// The orphan scan lists a repository's deploy keys and deletes the ones titled as ours whose key is
// not live. A key whose title has our prefix but no readable key id (anyone with admin rights on
// the repository can add one) is left alone, counted and logged, and never stops the scan.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createReconciler } from '../../src/queue/reconciler.ts';
import { systemTimers } from '../../src/time.ts';
import { generateEd25519 } from '../support/git-client.ts';
import { hostKeyTitles, issueKey } from '../support/revoke-checks.ts';
import { type Harness, startHarness } from '../support/service-harness.ts';

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness({ worker: false });
});
afterAll(async () => {
  await harness?.close();
});

function plantHostKey(repository: string, title: string) {
  const state = harness.standIns.github.state;
  return state.addKey({
    repositoryId: state.findRepository(repository)!.id,
    title,
    key: generateEd25519().publicKey,
    readOnly: true,
    expiresAt: null,
  });
}

it('skips a title it cannot read, and still removes the genuine orphan beside it', async () => {
  await issueKey(harness, {
    provider: 'github',
    repository: 'acme/models',
    jobId: 'orphans-1',
    ttlSeconds: 600,
  });
  const malformed = plantHostKey('acme/models', `deploykey-rotator:${'-'.repeat(36)}`);
  const uppercase = plantHostKey('acme/models', `deploykey-rotator:${randomUUID().toUpperCase()} job=x`);
  const orphan = plantHostKey('acme/models', `deploykey-rotator:${randomUUID()} job=gone`);

  const container = harness.service.container;
  const reconciler = createReconciler({
    db: container.db,
    keys: container.keys,
    hosts: container.hosts,
    keyService: container.keyService,
    queue: container.revokeQueue,
    clock: container.clock,
    timers: systemTimers,
    logger: container.logger,
    settings: container.config.reconciler,
  });
  const report = await reconciler.runOnce({ orphans: true });
  expect(report).toMatchObject({ errors: 0, orphansRemoved: 1, unreadableTitles: 2 });

  const titles = hostKeyTitles(harness, 'github', 'acme/models');
  expect(titles).not.toContain(orphan.title);
  expect(titles).toEqual(expect.arrayContaining([malformed.title, uppercase.title]));
  expect(harness.logs.text()).toContain('orphan scan skipped a deploy key whose title has our prefix');
  expect(harness.logs.text()).not.toContain('invalid input syntax for type uuid');
});
