// What the reconciler cleans up on its own: host keys with our title that no live key accounts for,
// and issues that were interrupted before they finished. It never touches anything else.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyTitle } from '../../src/hosts/git-host.ts';
import { ownerScope } from '../../src/keys/ownership.ts';
import { generateEd25519 } from '../support/git-client.ts';
import {
  auditCount,
  auditDetails,
  hostKeyTitles,
  type IssuedKey,
  issueKey,
  keyStatus,
  type Provider,
} from '../support/revoke-checks.ts';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';
import { secretExists } from '../support/vault-secrets.ts';

const PENDING_TIMEOUT_SECONDS = 2;

let harness: Harness;
let ours: IssuedKey;

beforeAll(async () => {
  harness = await startHarness({
    fileConfig: {
      reconciler: { periodSeconds: 1, pendingTimeoutSeconds: PENDING_TIMEOUT_SECONDS, orphanScanSeconds: 1 },
    },
  });
  ours = await issueKey(harness, {
    provider: 'github',
    repository: 'acme/models',
    jobId: 'reconciler-live',
    ttlSeconds: 3_600,
  });
});
afterAll(async () => {
  await harness?.close();
});

function plantHostKey(provider: Provider, repository: string, title: string) {
  const state = harness.standIns[provider].state;
  const repo = state.findRepository(repository)!;
  return state.addKey({
    repositoryId: repo.id,
    title,
    key: generateEd25519().publicKey,
    readOnly: true,
    expiresAt: null,
  });
}

const orphanPasses = () => harness.logs.text().match(/"orphansRemoved":[1-9]/g)?.length ?? 0;

/** Resolves once a reconciler pass that removed orphans has finished since `before` was counted. */
const passRemovingOrphans = (before: number) =>
  eventually(async () => orphanPasses() > before, { what: 'a reconciler pass that removed orphans' });

describe('orphan scan', () => {
  it('removes a host key with our title that no live key accounts for, and nothing else', async () => {
    const passesBefore = orphanPasses();
    const orphanId = randomUUID();
    const orphan = plantHostKey('github', 'acme/models', `deploykey-rotator:${orphanId} job=x`);
    const foreign = plantHostKey('github', 'acme/models', 'ci-bot read access');
    const lookalike = plantHostKey('github', 'acme/models', `deploykey-rotator-legacy:${orphanId} job=x`);
    const twinOfLive = plantHostKey('github', 'acme/models', `deploykey-rotator:${ours.id} job=x`);

    await eventually(async () => !hostKeyTitles(harness, 'github', 'acme/models').includes(orphan.title), {
      what: 'the orphan to be removed',
    });
    await passRemovingOrphans(passesBefore);

    const titles = hostKeyTitles(harness, 'github', 'acme/models');
    expect(titles).toContain(foreign.title);
    expect(titles).toContain(lookalike.title);
    expect(titles).toContain(twinOfLive.title);
    expect(titles.filter((title) => title.includes(ours.id))).toHaveLength(2);
    expect(await keyStatus(harness, ours.id)).toBe('active');

    const [details] = await auditDetails(harness, orphanId, 'key.orphan_removed');
    expect(details).toMatchObject({ hostKeyId: String(orphan.id), title: orphan.title, reason: 'orphan' });
    expect(await auditCount(harness, orphanId, 'key.orphan_removed')).toBe(1);
    expect(await auditCount(harness, ours.id, 'key.orphan_removed')).toBe(0);
  });

  it('leaves repositories we never issued a key for alone', async () => {
    const passesBefore = orphanPasses();
    const title = `deploykey-rotator:${randomUUID()} job=elsewhere`;
    plantHostKey('gitlab', 'acme/models', title);
    const watched = plantHostKey('github', 'acme/models', `deploykey-rotator:${randomUUID()} job=y`);
    await eventually(async () => !hostKeyTitles(harness, 'github', 'acme/models').includes(watched.title), {
      what: 'the orphan on a repository we issued to',
    });
    await passRemovingOrphans(passesBefore);
    expect(hostKeyTitles(harness, 'gitlab', 'acme/models')).toContain(title);
  });
});

describe('an issue interrupted between the host and Vault', () => {
  async function interruptedIssue(provider: Provider, repository: string, withSecret: boolean) {
    const id = randomUUID();
    const jobId = `interrupted-${provider}`;
    const { container } = harness.service;
    const createdAt = new Date(Date.now() - (PENDING_TIMEOUT_SECONDS + 5) * 1000);
    const vaultPath = container.secrets.pathFor(ownerScope('token:ci'), jobId, provider, repository);
    const inserted = await container.keys.insertPending(
      {
        id,
        provider,
        repository,
        job_id: jobId,
        delivery: 'vault',
        vault_path: vaultPath,
        caller: 'token:ci',
        owner: 'token:ci',
        repository_key: repository,
        caller_details: JSON.stringify({ kind: 'api-token', name: 'ci' }),
        created_at: createdAt,
        expires_at: new Date(createdAt.getTime() + 3_600_000),
        idempotency_key: null,
        request_hash: null,
      },
      { actor: 'token:ci', action: 'key.requested', details: { test: 'interrupted issue' } },
    );
    expect(inserted.outcome).toBe('inserted');
    const pair = generateEd25519();
    const hostKey = plantHostKey(provider, repository, keyTitle(id, jobId));
    if (withSecret) {
      await container.secrets.write(
        vaultPath,
        { privateKey: pair.privateKeyOpenssh, publicKey: pair.publicKey, knownHosts: '', fingerprint: 'x' },
        { keyId: id, expiresAt: new Date(Date.now() + 3_600_000) },
      );
    }
    return { id, hostKey, vaultPath };
  }

  it.each<[Provider, boolean]>([
    ['github', false],
    ['gitlab', true],
    ['gitea', true],
  ])(
    'on %s (Vault secret written: %s): removes what was left and ends the key failed',
    async (provider, withSecret) => {
      const { id, hostKey, vaultPath } = await interruptedIssue(provider, 'acme/datasets', withSecret);
      const row = await eventually(
        async () => {
          const current = await harness.service.container.keys.findById(id);
          return current?.status === 'failed' && current;
        },
        { what: 'the interrupted issue to end failed' },
      );
      expect(row.failure_reason).toBe('interrupted before it was issued');
      expect(hostKeyTitles(harness, provider, 'acme/datasets')).not.toContain(hostKey.title);
      const { vault, secrets } = harness.service.container;
      expect(await secretExists(vault, secrets.mount, vaultPath)).toBe(false);
      expect(await auditCount(harness, id, 'key.issue_failed')).toBe(1);
      expect(await auditCount(harness, id, 'key.orphan_removed')).toBe(0);
      const view = await harness.api('GET', `/v1/keys/${id}`);
      expect(view.body.status).toBe('failed');
    },
  );
});
