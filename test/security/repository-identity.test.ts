// GitHub and GitLab find a repository whatever the case of its path, so every spelling of one is
// one repository: one live key per job, one Vault path, one filter match, one orphan listing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReconciler } from '../../src/queue/reconciler.ts';
import { systemTimers } from '../../src/time.ts';
import { expectProblem, type SecurityHarness, startSecurityHarness } from './security-harness.ts';

const SPELLINGS = ['acme/models', 'ACME/models', 'Acme/Models', 'acme/MODELS'];
let h: SecurityHarness;
beforeAll(async () => {
  h = await startSecurityHarness({ worker: false });
});
afterAll(async () => {
  await h?.expectNoLeaks();
  await h?.close();
});

const issue = (provider: string, repository: string, jobId: string) =>
  h.call('POST', '/v1/keys', { body: { provider, repository, jobId, ttlSeconds: 600 } });

describe.each(['github', 'gitlab'])('on %s', (provider) => {
  it('one job gets one live key for a repository in any spelling, at one lower-case Vault path', async () => {
    const jobId = `spellings-${provider}`;
    const answers = [];
    for (const spelling of SPELLINGS) answers.push(await issue(provider, spelling, jobId));
    expect(answers[0]!.status, answers[0]!.text).toBe(201);
    for (const answer of answers.slice(1)) {
      expectProblem(answer, 409, 'key-already-active');
      expect(answer.body.activeKeyId).toBe(answers[0]!.body.id);
    }
    expect(answers[0]!.body.vault.path).toMatch(new RegExp(`/${jobId}/${provider}/acme/models$`));
    // The caller's spelling is kept for display.
    expect(answers[0]!.body.repository).toBe('acme/models');
  });
});

describe('a filter by repository', () => {
  it('matches every spelling, in the key list and in the audit log', async () => {
    await issue('github', 'Acme/Datasets', 'spelt-datasets');
    for (const spelling of ['acme/datasets', 'ACME/DATASETS']) {
      const keys = await h.call('GET', `/v1/keys?repository=${encodeURIComponent(spelling)}`);
      expect(keys.body.items.map((key: { repository: string }) => key.repository)).toEqual(['Acme/Datasets']);
      const events = await h.call('GET', `/v1/audit/events?repository=${encodeURIComponent(spelling)}`, {
        token: h.harness.tokens.auditor!,
      });
      expect(events.body.items.map((event: { action: string }) => event.action)).toEqual(
        expect.arrayContaining(['key.requested', 'key.issued']),
      );
    }
  });
});

describe('the orphan scan', () => {
  it('lists each repository once per pass, however many spellings keys were issued for', async () => {
    for (const [i, spelling] of SPELLINGS.entries()) {
      expect((await issue('github', spelling, `scan-${i}`)).status).toBe(201);
    }
    const container = h.harness.service.container;
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
    const before = h.githubRequests();
    const report = await reconciler.runOnce({ orphans: true });
    expect(report.errors).toBe(0);
    // acme/models and acme/datasets: one listing each.
    expect(h.githubRequests() - before).toBe(2);
  });
});
