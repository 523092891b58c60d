// A Kubernetes Job's service account, and only it, can read its key from Vault while the key lives.
import vault from 'node-vault';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sandboxAuthConfig } from '../../sandbox/stand-ins.ts';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

describe('Kubernetes callers reading their key through Vault', () => {
  let harness: Harness;

  const vaultAs = (token?: string) =>
    vault({ endpoint: harness.standIns.vault.addr, ...(token ? { token } : {}), debug: () => undefined });

  /** The token a pod presents to the service (audience deploykey-rotator). */
  const podToken = (namespace: string, serviceaccount: string) =>
    harness.standIns.oidc.mint('kubernetes', { namespace, serviceaccount });
  /** The token a pod requests for Vault: the per-key role requires the configured Vault audience. */
  const vaultPodToken = (namespace: string, serviceaccount: string) =>
    harness.standIns.oidc.mint('kubernetes', { namespace, serviceaccount }, { audience: 'vault' });

  async function login(role: string, jwt: string): Promise<string> {
    const answer = await vaultAs().kubernetesLogin({ role, jwt, mount_point: 'kubernetes' });
    return answer.auth.client_token as string;
  }

  async function issueAs(jwt: string, jobId: string, repository = 'acme/models') {
    return harness.api('POST', '/v1/keys', {
      token: jwt,
      body: { provider: 'github', repository, jobId, ttlSeconds: 600 },
    });
  }

  beforeAll(async () => {
    harness = await startHarness({ fileConfig: (standIns) => sandboxAuthConfig(standIns) });
  });
  afterAll(async () => {
    await harness?.close();
  });

  it('lets the bound service account read exactly its key, and nobody else, until it is revoked', async () => {
    const trainer = await podToken('training', 'trainer');
    const issued = await issueAs(trainer, 'train-1');
    expect(issued.status).toBe(201);
    const { path, role, mount } = issued.body.vault;
    expect(role).toBe(`deploykey-${issued.body.id}`);
    expect(issued.body.privateKey).toBeUndefined();

    // A token of the right account minted for another audience (here: the one it asked the service
    // with) does not log in: only tokens the pod requested for Vault do.
    await expect(login(role, await podToken('training', 'trainer'))).rejects.toMatchObject({
      response: { statusCode: 403 },
    });
    const podVault = vaultAs(await login(role, await vaultPodToken('training', 'trainer')));
    const secret = await podVault.read(`${mount}/data/${path}`);
    expect(secret.data.data['ssh-privatekey']).toContain('BEGIN OPENSSH PRIVATE KEY');
    expect(secret.data.data.known_hosts).toContain('ssh-ed25519');

    // The role's token reads nothing but that one path.
    const other = await issueAs(trainer, 'train-2', 'acme/datasets');
    expect(other.status).toBe(201);
    await expect(podVault.read(`${mount}/data/${other.body.vault.path}`)).rejects.toMatchObject({
      response: { statusCode: 403 },
    });
    await expect(podVault.write(`${mount}/data/${path}`, { data: { x: 'y' } })).rejects.toMatchObject({
      response: { statusCode: 403 },
    });

    // Another service account or another namespace cannot log in with this key's role.
    await expect(login(role, await vaultPodToken('training', 'intruder'))).rejects.toMatchObject({
      response: { statusCode: 403 },
    });
    await expect(login(role, await vaultPodToken('default', 'trainer'))).rejects.toMatchObject({
      response: { statusCode: 403 },
    });

    const revoked = await harness.api('DELETE', `/v1/keys/${issued.body.id}`, { token: trainer });
    expect(revoked.status).toBe(202);
    await eventually(
      async () =>
        (await harness.api('GET', `/v1/keys/${issued.body.id}`, { token: trainer })).body.status ===
        'revoked',
      { what: 'the key to be revoked' },
    );
    await expect(login(role, await vaultPodToken('training', 'trainer'))).rejects.toMatchObject({
      response: { statusCode: 400 },
    });
    const root = vaultAs(harness.standIns.vault.token);
    await expect(root.read(`sys/policies/acl/${role}`)).rejects.toMatchObject({
      response: { statusCode: 404 },
    });
  });

  it('gives no Vault role to keys delivered another way or to other callers', async () => {
    const trainer = await podToken('training', 'trainer');
    const wrapped = await harness.api('POST', '/v1/keys', {
      token: trainer,
      body: {
        provider: 'github',
        repository: 'acme/models',
        jobId: 'train-wrapped',
        ttlSeconds: 600,
        delivery: 'wrapped',
      },
    });
    expect(wrapped.status).toBe(201);
    expect(wrapped.body.vault.role).toBeUndefined();

    const workflow = await harness.standIns.oidc.mint('github-actions', { repository: 'acme/models' });
    const fromCi = await issueAs(workflow, 'gha-1');
    expect(fromCi.status).toBe(201);
    expect(fromCi.body.vault.role).toBeUndefined();
  });

  it('refuses a Kubernetes caller outside the policy before anything is created', async () => {
    const outsider = await podToken('default', 'builder');
    const answer = await issueAs(outsider, 'outsider-1');
    expect(answer.status).toBe(403);
    expect(answer.body.reason).toBe('no-matching-rule');
  });
});
