// The keys the controller issues for a Job share one Vault role, deploykey-job.<namespace>.<name>:
// written by every issue, removed with the Job's last pending or active key, and right however the
// Job's issues and revokes interleave (they run at once, in the controller and the workers).
import { randomUUID } from 'node:crypto';
import vault from 'node-vault';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_OIDC_ISSUER_ID, sandboxAuthConfig } from '../../sandbox/stand-ins.ts';
import { bindingRef } from '../../src/keys/binding.ts';
import { CONTROLLER_ACTOR, callerOfJob } from '../../src/kubernetes/job-keys.ts';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

let harness: Harness;

beforeAll(async () => {
  harness = await startHarness({ worker: true, fileConfig: sandboxAuthConfig });
});
afterAll(async () => {
  await harness?.close();
});

const roleOf = (name: string) => `deploykey-job.training.${name}`;
const vaultAs = (token?: string) =>
  vault({ endpoint: harness.standIns.vault.addr, ...(token ? { token } : {}), debug: () => undefined });
const vaultRoot = () => vaultAs(harness.standIns.vault.token);

function jobOf(name: string) {
  const job = { namespace: 'training', name, uid: randomUUID(), serviceAccount: 'trainer' };
  const caller = callerOfJob(job, SANDBOX_OIDC_ISSUER_ID);
  const issue = async (provider: string, repository: string) =>
    (
      await harness.service.container.keyService.issue(caller, {
        provider,
        repository,
        jobId: `training:${name}`,
        ttlSeconds: 600,
        delivery: 'vault',
        binding: { kind: 'kubernetes-job', namespace: 'training', name, uid: job.uid },
      })
    ).row;
  return { ...job, issue };
}

/** A pod of training/trainer logs in with the Job's role; the login's Vault client, or the refusal. */
async function podLogin(name: string) {
  const jwt = await harness.standIns.oidc.mint(
    'kubernetes',
    { namespace: 'training', serviceaccount: 'trainer' },
    { audience: 'vault' },
  );
  const login = await vaultAs().kubernetesLogin({ role: roleOf(name), jwt, mount_point: 'kubernetes' });
  return vaultAs(login.auth.client_token);
}

const revoked = (ids: string[]) =>
  eventually(
    async () => {
      const rows = await Promise.all(ids.map((id) => harness.service.container.keys.findById(id)));
      return rows.every((row) => row?.status === 'revoked');
    },
    { timeoutMs: 15_000, intervalMs: 50, what: 'the keys to be revoked' },
  );

async function expectRoleGone(name: string) {
  await expect(podLogin(name)).rejects.toMatchObject({ response: { statusCode: 400 } });
  await expect(vaultRoot().read(`sys/policies/acl/${roleOf(name)}`)).rejects.toMatchObject({
    response: { statusCode: 404 },
  });
}

describe("a Job's shared Vault role", () => {
  it('is shared by keys issued at once, reads each of them, and goes with the last of them revoked at once', async () => {
    const job = jobOf('shared-burst');
    const wanted = ['github', 'gitlab', 'gitea'].flatMap((provider) =>
      ['acme/models', 'acme/datasets'].map((repository) => [provider, repository] as const),
    );
    const rows = await Promise.all(wanted.map(([provider, repository]) => job.issue(provider, repository)));
    const pod = await podLogin('shared-burst');
    const { mount } = harness.service.container.secrets;
    for (const row of rows) {
      expect(row.vault_path).toBe(
        `deploy-keys/kubernetes/training/shared-burst/${row.provider}/${row.repository}`,
      );
      const secret = await pod.read(`${mount}/data/${row.vault_path}`);
      expect(secret.data.data.fingerprint).toBe(row.fingerprint);
    }

    const { keyService } = harness.service.container;
    await keyService.revokeBound(bindingRef.kubernetesJob(job.uid), 'job-ended', CONTROLLER_ACTOR, {});
    await revoked(rows.map((row) => row.id));
    await expectRoleGone('shared-burst');
  });

  it('stays for the next key when a revoke removing it races that key’s issue', async () => {
    const job = jobOf('shared-race');
    const first = await job.issue('github', 'acme/models');
    // The first key's revoke finds no other key of the Job and removes the role, slowly: its role
    // delete is held at Vault while the Job's next key is issued.
    const { faults } = harness.standIns.vault;
    const before = faults.stats().injected;
    faults.add({
      method: 'DELETE',
      pathPrefix: `/v1/auth/kubernetes/role/${roleOf('shared-race')}`,
      latencyMs: 2_000,
      count: 1,
    });
    const asked = await harness.api('DELETE', `/v1/keys/${first.id}`, { token: harness.tokens.admin! });
    expect(asked.status).toBe(202);
    await eventually(async () => faults.stats().injected > before, {
      timeoutMs: 15_000,
      intervalMs: 20,
      what: 'the role delete to reach Vault',
    });
    const next = await job.issue('github', 'acme/datasets');
    await revoked([first.id]);

    const pod = await podLogin('shared-race');
    const { mount } = harness.service.container.secrets;
    const secret = await pod.read(`${mount}/data/${next.vault_path}`);
    expect(secret.data.data.fingerprint).toBe(next.fingerprint);
    await expect(pod.read(`${mount}/data/${first.vault_path}`)).rejects.toMatchObject({
      response: { statusCode: 404 },
    });

    await harness.api('DELETE', `/v1/keys/${next.id}`, { token: harness.tokens.admin! });
    await revoked([next.id]);
    await expectRoleGone('shared-race');
  });
});
