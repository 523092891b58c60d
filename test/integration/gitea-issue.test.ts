// What the service does about a Gitea host that answers too late, and about keys with our title that
// nothing accounts for on a Gitea repository: the caller is told, and nothing stays behind.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyTitle } from '../../src/hosts/git-host.ts';
import { generateEd25519 } from '../support/git-client.ts';
import { expectNothingLeftBehind, expectProblem, keysOfJob } from '../support/issue-checks.ts';
import { auditDetails, hostKeyTitles, issueKey } from '../support/revoke-checks.ts';
import { eventually, type Harness, standInHosts, startHarness } from '../support/service-harness.ts';

// The Gitea host here gives up on a request after 3 s (10 s unless configured); its create answers later.
const TIMEOUT_SECONDS = 3;
const LATE_MS = TIMEOUT_SECONDS * 1000 + 1_000;

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness({
    fileConfig: (standIns) => ({
      hosts: standInHosts(standIns, { gitea: { requestTimeoutSeconds: TIMEOUT_SECONDS } }),
    }),
  });
});
afterAll(async () => {
  await harness?.close();
});

describe('a Gitea host', () => {
  it('that answers a create after the timeout: 504 naming the host, and a key it registers late is removed', async () => {
    const gitea = harness.standIns.gitea;
    gitea.api.faults.add({ method: 'POST', pathPrefix: '/api/v1/repos/', latencyMs: LATE_MS, count: 1 });
    const request = { provider: 'gitea', repository: 'acme/models', jobId: 'gitea-late', ttlSeconds: 600 };
    const answer = await harness.api('POST', '/v1/keys', { body: request });
    expectProblem(answer, 504, 'host-timeout', /gitea/);

    // A create the host finishes after we stopped waiting: its key appears under the failed row's title.
    const [row] = await keysOfJob(harness, request.jobId);
    const state = harness.standIns.gitea.state;
    const late = state.addKey({
      repositoryId: state.findRepository('acme/models')!.id,
      title: keyTitle(String(row?.id), request.jobId),
      key: generateEd25519().publicKey,
      readOnly: true,
      expiresAt: null,
    });
    await eventually(async () => !hostKeyTitles(harness, 'gitea', 'acme/models').includes(late.title), {
      what: 'the late key to be removed',
    });
    await expectNothingLeftBehind(harness, { ...request, provider: 'gitea' });
  }, 60_000);

  it('loses a key with our title that no live key accounts for to the orphan scan, and keeps the others', async () => {
    const live = await issueKey(harness, {
      provider: 'gitea',
      repository: 'acme/models',
      jobId: 'gitea-live',
      ttlSeconds: 3_600,
    });
    const state = harness.standIns.gitea.state;
    const repositoryId = state.findRepository('acme/models')!.id;
    const plant = (title: string) =>
      state.addKey({
        repositoryId,
        title,
        key: generateEd25519().publicKey,
        readOnly: true,
        expiresAt: null,
      });
    const orphanId = randomUUID();
    const orphan = plant(`deploykey-rotator:${orphanId} job=x`);
    const foreign = plant('ci-bot read access');

    await eventually(async () => !hostKeyTitles(harness, 'gitea', 'acme/models').includes(orphan.title), {
      what: 'the orphan to be removed',
      timeoutMs: 15_000,
    });
    const titles = hostKeyTitles(harness, 'gitea', 'acme/models');
    expect(titles).toContain(foreign.title);
    expect(titles.some((title) => title.includes(live.id))).toBe(true);
    const [details] = await eventually(async () => {
      const found = await auditDetails(harness, orphanId, 'key.orphan_removed');
      return found.length > 0 && found;
    });
    expect(details).toMatchObject({ hostKeyId: String(orphan.id), title: orphan.title, reason: 'orphan' });
  }, 60_000);
});
