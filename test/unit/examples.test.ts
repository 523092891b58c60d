// examples/ held to the code: the CI snippets ask for what the deployed policy grants, and the
// Kubernetes Jobs read, from the Vault stand-in as their pods would, exactly the secret the service
// writes for them, under the role the service creates (the Job's own, whose name and paths the
// main example writes in advance; or the per-key role of the manual fallback), in files ssh accepts.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccessPolicy } from '../../src/auth/access-policy.ts';
import { DEFAULT_AUDIENCE as CLIENT_AUDIENCE } from '../../src/cli/client/credentials.ts';
import { DEFAULT_GITLAB_TOKEN_VAR } from '../../src/cli/client/environment.ts';
import { parseDuration } from '../../src/cli/duration.ts';
import { repositoryKey } from '../../src/keys/ownership.ts';
import { generateDeployKeyPair } from '../../src/keys/ssh-keypair.ts';
import { parseKeyRequest, type RequestedKey } from '../../src/kubernetes/annotations.ts';
import { callerOfJob } from '../../src/kubernetes/job-keys.ts';
import type { PolicyRequest, PolicySubject } from '../../src/model/access.ts';
import { jobRoleName } from '../../src/vault/kubernetes-grants.ts';
import type { KeySecret } from '../../src/vault/secret-store.ts';
import { createVaultClient, staticToken } from '../../src/vault/vault-client.ts';
import { createVaultSecretStore } from '../../src/vault/vault-secret-store.ts';
import { CLI_PATH } from '../support/cli.ts';
import { type JobExample, jobExample, startPolicyVault } from '../support/kubernetes-examples.ts';
import { DEFAULT_AUDIENCE, deployConfig, readText, readYaml } from '../support/packaging-files.ts';

const config = deployConfig();
const policy = createAccessPolicy(config.policy, {
  issuers: config.auth.oidcIssuers.map((i) => i.id),
  providers: config.hosts.map((h) => h.id),
});
const issuerId = (url: string) => config.auth.oidcIssuers.find((i) => i.issuer === url)!.id;
const allowed = (subject: PolicySubject, request: PolicyRequest) =>
  policy.decide(subject, request, 0).allowed;

describe('CI examples', () => {
  it('GitHub Actions: uses the action, which requests an ID token for our audience; the policy lets it clone its own repository', async () => {
    const workflow = readYaml('examples/github-actions.yml')[0] as {
      permissions: Record<string, string>;
      jobs: Record<string, { steps: { uses?: string; run?: string; with?: Record<string, string> }[] }>;
    };
    expect(workflow.permissions['id-token']).toBe('write');
    const steps = Object.values(workflow.jobs).flatMap((job) => job.steps);
    const action = steps.find((s) => s.uses?.endsWith('/deploykey-rotator/action@v1'))!;
    expect(action, 'the workflow uses the action').toBeDefined();
    expect(
      steps.filter((s) => s.run?.includes('npm install')),
      'no client install step',
    ).toEqual([]);
    const manifest = readYaml('action/action.yml')[0] as { inputs: Record<string, { default?: string }> };
    expect(manifest.inputs.audience?.default).toBe(DEFAULT_AUDIENCE);
    expect(CLIENT_AUDIENCE).toBe(DEFAULT_AUDIENCE);
    expect(config.auth.audience).toBe(DEFAULT_AUDIENCE);
    expect(config.hosts.find((h) => h.id === manifest.inputs.provider?.default)?.type).toBe('github');

    const claims = { repository: 'acme/models', repository_owner: 'acme', workflow: 'train' };
    const request = {
      provider: 'github',
      repository: 'acme/models',
      ttlSeconds: parseDuration(action.with!.ttl!)!,
      delivery: 'response',
    } as const;
    const subject = { issuer: issuerId('https://token.actions.githubusercontent.com'), claims };
    expect(allowed(subject, request)).toBe(true);
    expect(allowed(subject, { ...request, repository: 'acme/datasets' })).toBe(false);
  });

  it('GitLab CI: includes the component, whose id token has our audience in the variable the client reads', () => {
    const pipeline = readYaml('examples/gitlab-ci.yml')[0] as {
      include: { component: string; inputs: Record<string, string> }[];
    } & Record<string, { extends?: string }>;
    const [include] = pipeline.include;
    expect(include!.component).toMatch(/\/deploykey-rotator\/deploykey@1$/);
    expect(
      Object.values(pipeline).some((job) => (job as { extends?: string }).extends === '.deploykey'),
    ).toBe(true);
    const [spec, body] = readYaml('templates/deploykey.yml') as [
      { spec: { inputs: Record<string, { default?: string }> } },
      Record<string, { id_tokens: Record<string, { aud: string }> }>,
    ];
    expect(spec.spec.inputs.audience?.default).toBe(DEFAULT_AUDIENCE);
    expect(Object.keys(body['.deploykey']!.id_tokens)).toEqual([DEFAULT_GITLAB_TOKEN_VAR]);

    const claims = { project_path: 'acme/models', namespace_path: 'acme' };
    const request = {
      provider: spec.spec.inputs.provider!.default!,
      repository: 'acme/models',
      ttlSeconds: parseDuration(include!.inputs.ttl!)!,
      delivery: 'response',
    } as const;
    expect(allowed({ issuer: issuerId('https://gitlab.com'), claims }, request)).toBe(true);
  });
});

let vault: Awaited<ReturnType<typeof startPolicyVault>>;
beforeAll(async () => {
  vault = await startPolicyVault();
});
afterAll(async () => {
  await vault?.close();
});

const run = promisify(execFile);
// The envsubst placeholders the Kubernetes examples' instructions fill in.
const KEY_ID = '$' + '{KEY_ID}';
const VAULT_PATH = '$' + '{VAULT_PATH}';

/** The files the pod would see are ones ssh takes: the key of `secret` and its known_hosts line. */
async function expectSshAccepts(example: JobExample, files: Record<string, string>, secret: KeySecret) {
  const ssh = example.container.env!.find((e) => e.name === 'GIT_SSH_COMMAND')!.value!.split(' ');
  expect(ssh).toEqual(expect.arrayContaining(['StrictHostKeyChecking=yes', 'IdentitiesOnly=yes']));
  const knownHostsFile = ssh.find((w) => w.startsWith('UserKnownHostsFile='))!.split('=')[1]!;
  expect(files[knownHostsFile]?.trim()).toBe(secret.knownHosts);
  // The key file ssh is given (the CSI example first copies the mounted one to a 0600 file).
  const keyFile = ssh[ssh.indexOf('-i') + 1]!;
  const copied = /install -m 0600 (\S+) (\S+)/.exec(example.container.args?.join(' ') ?? '');
  const rendered = files[copied?.[2] === keyFile ? copied[1]! : keyFile]!;
  const dir = mkdtempSync(join(tmpdir(), 'dkr-example-'));
  try {
    writeFileSync(join(dir, 'id_ed25519'), rendered, { mode: 0o600 });
    const { stdout } = await run('ssh-keygen', ['-y', '-f', join(dir, 'id_ed25519')]);
    expect(stdout.trim().split(' ').slice(0, 2)).toEqual(secret.publicKey.split(' ').slice(0, 2));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Logs in as the Vault Agent or the CSI provider would for the example's pod; only its own service
 * account, with a token for Vault's audience, gets in. Resolves with the pod's Vault token.
 */
async function expectOnlyThePodLogsIn(example: JobExample, role: string, namespace: string) {
  const serviceAccount = example.pod.spec.serviceAccountName;
  const audience = example.vaultAudience!;
  expect(await vault.podLogin(role, namespace, 'someone-else', audience)).toBeUndefined();
  // The account's token for any other audience (the API server's, the service's) is refused.
  expect(await vault.podLogin(role, namespace, serviceAccount, DEFAULT_AUDIENCE)).toBeUndefined();
  expect(
    await vault.podLogin(role, namespace, serviceAccount, 'https://kubernetes.default.svc.cluster.local'),
  ).toBeUndefined();
  return (await vault.podLogin(role, namespace, serviceAccount, audience))!;
}

const KNOWN_HOSTS =
  'github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
const serviceStore = () =>
  createVaultSecretStore({
    vault: createVaultClient({ addr: vault.addr, token: staticToken(vault.serviceToken) }),
    kvMount: config.vault.kvMount,
    pathPrefix: config.vault.pathPrefix,
  });
const readAsPod = (token: string) => async (vaultPath: string) => {
  const { status, body } = await vault.call('GET', vaultPath, token);
  expect(status, `the pod reads ${vaultPath}`).toBe(200);
  return body;
};
const kubernetesCaller = (namespace: string, name: string) => ({
  issuer: 'cluster',
  claims: { 'kubernetes.io': { namespace, serviceaccount: { name } } },
});

describe('examples/kubernetes/training-job.yaml: two annotations, the controller does the rest', () => {
  const example = jobExample('examples/kubernetes/training-job.yaml');
  const { namespace, name } = example.job.metadata;
  const request = parseKeyRequest(example.job.metadata.annotations ?? {});
  const keys = request.ok ? request.keys : [];

  it('asks for keys the deployed policy lets its service account take, for longer than the Job may run', () => {
    expect(request.ok).toBe(true);
    expect(keys.length).toBeGreaterThan(0);
    const ttlSeconds = request.ok ? (request.ttlSeconds ?? 0) : 0;
    expect(example.job.spec.activeDeadlineSeconds).toBeLessThan(ttlSeconds);
    // The caller the controller asks the policy about: the Job's own service account.
    const asJob = (serviceAccount: string) =>
      callerOfJob({ namespace, name, uid: randomUUID(), serviceAccount }, config.kubernetes.oidcIssuerId)
        .subject;
    for (const key of keys) {
      const asked = { ...key, ttlSeconds, delivery: 'vault' } as const;
      expect(allowed(asJob(example.pod.spec.serviceAccountName), asked)).toBe(true);
      expect(allowed(asJob('someone-else'), asked)).toBe(false);
    }
    expect(example.annotations).toMatchObject({
      'vault.hashicorp.com/agent-inject': 'true',
      'vault.hashicorp.com/agent-pre-populate-only': 'true',
    });
    expect(example.vaultAudience).toBe(config.vault.kubernetesAudience);
  });

  it('names the role and the paths the service derives for this Job, and its pod reads its key through them', async () => {
    const store = serviceStore();
    const pathOf = (key: RequestedKey) =>
      store.jobPathFor(namespace, name, key.provider, repositoryKey(key.repository));
    expect(example.role).toBe(jobRoleName(namespace, name));
    expect(new Set(example.vaultPaths)).toEqual(
      new Set(keys.map((key) => `${store.mount}/data/${pathOf(key)}`)),
    );
    expect(example.placeholders, 'nothing to fill in').toEqual([]);

    // What the controller does once the Job exists: the key at its path, and the Job's role.
    const keyId = randomUUID();
    const secret = { ...generateDeployKeyPair(`deploykey-rotator:${keyId}`), knownHosts: KNOWN_HOSTS };
    await store.write(pathOf(keys[0]!), secret, { keyId, expiresAt: new Date(Date.now() + 600_000) });
    const role = await store.grantJobRead({
      namespace,
      jobName: name,
      serviceAccount: example.pod.spec.serviceAccountName,
      tokenTtlSeconds: 600,
      audience: config.vault.kubernetesAudience,
    });
    expect(role).toBe(example.role);

    const podToken = await expectOnlyThePodLogsIn(example, role, namespace);
    await expectSshAccepts(example, await example.render(readAsPod(podToken), (text) => text), secret);

    // The Job's last key revoked: the role goes, and the pod can no longer log in.
    await store.removeJobRead(namespace, name);
    expect(
      await vault.podLogin(role, namespace, example.pod.spec.serviceAccountName, example.vaultAudience!),
    ).toBeUndefined();
    await store.destroy(pathOf(keys[0]!), keyId);
  });
});

describe.each([
  'examples/kubernetes/manual-training-job-agent-injector.yaml',
  'examples/kubernetes/manual-training-job-csi.yaml',
])('%s: the fallback without the controller', (file) => {
  const example = jobExample(file);
  const { namespace } = example.job.metadata;
  const serviceAccount = example.pod.spec.serviceAccountName;

  it('issues for its own Job, as a caller the deployed policy lets take keys through Vault only', () => {
    expect(example.issue.jobId).toBe(example.job.metadata.name);
    expect(example.completedJob).toBe(example.issue.jobId);
    expect(example.issue.delivery).toBe('vault');
    expect(example.audience).toBe(DEFAULT_AUDIENCE);
    expect(example.placeholders, 'the instructions fill in the role and the path with envsubst').toEqual([
      KEY_ID,
      VAULT_PATH,
    ]);
    // The pod logs in to Vault with a token for Vault's audience, the one the per-key role requires.
    expect(example.vaultAudience).toBe(config.vault.kubernetesAudience);
    expect(example.vaultAudience).not.toBe(DEFAULT_AUDIENCE);
    expect(example.job.spec.activeDeadlineSeconds).toBeLessThan(example.issue.ttlSeconds);
    const request = { ...example.issue, delivery: 'vault' } as const;
    expect(allowed(kubernetesCaller(namespace, serviceAccount), request)).toBe(true);
    expect(allowed(kubernetesCaller(namespace, serviceAccount), { ...request, delivery: 'response' })).toBe(
      false,
    );
    expect(allowed(kubernetesCaller(namespace, 'someone-else'), request)).toBe(false);
  });

  it('asks the injector or the CSI driver for a volume that is ready before the Job runs', () => {
    if (example.csi) {
      expect(example.csi.providerClass.spec.provider).toBe('vault');
      expect(example.csi.volume).toMatchObject({
        driver: 'secrets-store.csi.k8s.io',
        readOnly: true,
        volumeAttributes: { secretProviderClass: example.csi.providerClass.metadata.name },
      });
    } else {
      // Pre-populate only: an injected sidecar would keep running and the Job would never complete.
      expect(example.annotations).toMatchObject({
        'vault.hashicorp.com/agent-inject': 'true',
        'vault.hashicorp.com/agent-pre-populate-only': 'true',
      });
    }
  });

  it('reads, as the Job pod under the per-key role, the key the service wrote, in files ssh accepts', async () => {
    const { provider, repository, jobId } = example.issue;
    const store = serviceStore();
    // The path comes from the issue's answer (`vault.path`), filled in as VAULT_PATH.
    const path = store.pathFor('o-example', jobId, provider, repository);
    for (const vaultPath of example.vaultPaths) expect(vaultPath).toBe(`${store.mount}/data/${VAULT_PATH}`);
    const filled = (vaultPath: string) => vaultPath.replace(VAULT_PATH, path);

    const keyId = randomUUID();
    const secret = { ...generateDeployKeyPair(`deploykey-rotator:${keyId}`), knownHosts: KNOWN_HOSTS };
    await store.write(path, secret, { keyId, expiresAt: new Date(Date.now() + 600_000) });
    const role = await store.grantKubernetesRead(path, {
      keyId,
      namespace,
      serviceAccount,
      tokenTtlSeconds: 600,
      audience: config.vault.kubernetesAudience,
    });
    expect(example.role.replace(KEY_ID, keyId)).toBe(role);

    const podToken = await expectOnlyThePodLogsIn(example, role, namespace);
    await expectSshAccepts(example, await example.render(readAsPod(podToken), filled), secret);

    // Revoking removes the role: the pod can no longer log in, even with a valid account token.
    await store.removeKubernetesRead(keyId);
    expect(await vault.podLogin(role, namespace, serviceAccount, example.vaultAudience!)).toBeUndefined();
    await store.destroy(path, keyId);
  });
});

describe('deploykey commands in the examples', () => {
  // What the CI platforms and the operator's shell put in place of the examples' variables.
  const VARIABLES: Record<string, string> = {
    CI_JOB_ID: '4242',
    CI_PROJECT_PATH: 'acme/models',
    CI_BUILDS_DIR: tmpdir(),
  };
  // The CI examples run the action and the GitLab component, which test/e2e runs for real.
  const FILES = [
    'gitlab/deploykey.gitlab-ci.yml',
    'examples/kubernetes/manual-training-job-agent-injector.yaml',
    'examples/kubernetes/manual-training-job-csi.yaml',
  ];
  const commands = FILES.flatMap((file) =>
    [
      ...readText(file)
        .replace(/\\\n\s*/g, '')
        .replace(/\$\{\{ github\.repository \}\}/g, 'acme/models')
        .matchAll(/deploykey (?:issue|complete)\b[^)|\n]*/g),
    ].map((m) => ({ file, line: m[0].trim() })),
  );

  it('are ones the client accepts, getting as far as calling the service', async () => {
    expect(commands.map((c) => c.line.split(' ')[1])).toEqual(FILES.flatMap(() => ['issue', 'complete']));
    const bin = mkdtempSync(join(tmpdir(), 'dkr-bin-'));
    // A service that refuses every credential at once: a command whose arguments parse reaches it and
    // exits 3, not 2 (usage); each command's own token tells which request was its.
    const service = await startRefusingService();
    try {
      writeFileSync(join(bin, 'deploykey'), `#!/bin/sh\nexec "${process.execPath}" "${CLI_PATH}" "$@"\n`, {
        mode: 0o755,
      });
      const env = { ...VARIABLES, PATH: `${bin}:${process.env.PATH}`, HOME: tmpdir() };
      const runs = commands.map(({ file, line }, i) => {
        const token = `dkr_example_${i}`;
        return run('sh', ['-c', line], {
          env: { ...env, DEPLOYKEY_URL: service.url, DEPLOYKEY_TOKEN: token },
        }).then(
          () => ({ file, line, token, code: 0, stderr: '' }),
          (error: { code: number; stderr: string }) => ({
            file,
            line,
            token,
            code: error.code,
            stderr: error.stderr,
          }),
        );
      });
      for (const result of await Promise.all(runs)) {
        const what = `${result.file}: ${result.line}`;
        expect(result.stderr, what).toContain('401 unauthorized');
        expect(result.code, what).toBe(3);
        const received = service.requests.filter((r) => r.authorization === `Bearer ${result.token}`);
        const calls = received.map((r) => `${r.method} ${r.url}`);
        if (result.line.startsWith('deploykey issue ')) {
          expect(calls, what).toEqual(['POST /v1/keys']);
          expect(received[0]!.body, what).toMatchObject({ repository: 'acme/models' });
        } else {
          expect(calls, what).toEqual([expect.stringMatching(/^POST \/v1\/jobs\/[^/]+\/complete$/)]);
        }
      }
    } finally {
      await service.close();
      rmSync(bin, { recursive: true, force: true });
    }
  }, 90_000);
});

interface ReceivedRequest {
  method: string;
  url: string;
  authorization: string;
  body: unknown;
}

/** Answers every request 401 as the service does an unknown token, and keeps what it was sent. */
async function startRefusingService() {
  const requests: ReceivedRequest[] = [];
  const server = createServer((request, response) => {
    let text = '';
    request.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
    });
    request.on('end', () => {
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {}
      const { method = '', url = '', headers } = request;
      requests.push({ method, url, authorization: headers.authorization ?? '', body });
      response.writeHead(401, { 'content-type': 'application/problem+json' });
      response.end(
        JSON.stringify({ type: 'about:blank', title: 'Unauthorized', status: 401, code: 'unauthorized' }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
