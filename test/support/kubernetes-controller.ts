// A service harness with the Kubernetes controller running in the test process against the
// Kubernetes stand-in, and what the tests ask of a Job and its keys.
import { BatchV1Api, CoreV1Api, KubeConfig, type V1Job, type V1Pod } from '@kubernetes/client-node';
import vault from 'node-vault';
import type { QuickJob } from '../../sandbox/kubernetes/cluster.ts';
import { SANDBOX_OIDC_ISSUER_ID, type StandIns, sandboxAuthConfig } from '../../sandbox/stand-ins.ts';
import { type KubernetesController, startKubernetesController } from '../../src/kubernetes/controller.ts';
import { eventually, type Harness, startHarness } from './service-harness.ts';

export interface ControllerHarness {
  harness: Harness;
  batch: BatchV1Api;
  core: CoreV1Api;
  controller: KubernetesController;
  readJob(namespace: string, name: string): Promise<V1Job>;
  /** A pod of `namespace/serviceAccount` logs in to Vault with `role` and reads the key at `path`. */
  readAsPod(
    namespace: string,
    serviceAccount: string,
    role: string,
    path: string,
  ): Promise<Record<string, string>>;
  /** A pod of the Job, once its controller (the stand-in's) has made one. */
  podOf(namespace: string, jobName: string): Promise<V1Pod>;
  /**
   * What the Vault Agent injector does for `pod`: logs in with the role its
   * `vault.hashicorp.com/role` annotation names, as the pod's service account (with a token for
   * Vault's audience), and reads each secret an `agent-inject-secret-<file>` annotation names.
   * Resolves with each file's secret data, undefined for a secret that does not exist (the agent
   * would retry); rejects when the login or a read is refused.
   */
  injectorReads(pod: V1Pod): Promise<Record<string, Record<string, string> | undefined>>;
  close(): Promise<void>;
}

/** The sandbox's OIDC issuer and policy, and the controller pointed at the Kubernetes stand-in. */
export const controllerFileConfig = (standIns: StandIns) => ({
  ...sandboxAuthConfig(standIns),
  kubernetes: {
    kubeconfig: standIns.kubernetes.kubeconfigPath,
    oidcIssuerId: SANDBOX_OIDC_ISSUER_ID,
    sweepSeconds: 1,
    leaderRetrySeconds: 1,
  },
});

export async function startControllerHarness(): Promise<ControllerHarness> {
  const harness = await startHarness({ worker: true, fileConfig: controllerFileConfig });
  const kubeconfig = new KubeConfig();
  kubeconfig.loadFromFile(harness.standIns.kubernetes.kubeconfigPath);
  const controller = startKubernetesController(harness.service.container);
  await controller.leading;
  const vaultAs = (token?: string) =>
    vault({ endpoint: harness.standIns.vault.addr, ...(token ? { token } : {}), debug: () => undefined });
  /** Vault's Kubernetes login as a pod of `namespace/serviceAccount`, with a token for Vault's audience. */
  const loginAs = async (namespace: string, serviceAccount: string, role: string) => {
    const jwt = await harness.standIns.oidc.mint(
      'kubernetes',
      { namespace, serviceaccount: serviceAccount },
      { audience: 'vault' },
    );
    const login = await vaultAs().kubernetesLogin({ role, jwt, mount_point: 'kubernetes' });
    return vaultAs(login.auth.client_token);
  };
  const batch = kubeconfig.makeApiClient(BatchV1Api);
  const handle: ControllerHarness = {
    harness,
    batch,
    core: kubeconfig.makeApiClient(CoreV1Api),
    controller,
    readJob: (namespace, name) => batch.readNamespacedJob({ namespace, name }),
    podOf: (namespace, jobName) =>
      eventually(
        async () => {
          const job = await batch.readNamespacedJob({ namespace, name: jobName });
          const pods = await handle.core.listNamespacedPod({ namespace });
          return pods.items.find((pod) => pod.metadata?.ownerReferences?.[0]?.uid === job.metadata?.uid);
        },
        { timeoutMs: 5_000, intervalMs: 50, what: `a pod of ${jobName}` },
      ),
    async readAsPod(namespace, serviceAccount, role, path) {
      const asPod = await loginAs(namespace, serviceAccount, role);
      const secret = await asPod.read(`${harness.service.container.secrets.mount}/data/${path}`);
      return secret.data.data;
    },
    async injectorReads(pod) {
      const annotations = pod.metadata?.annotations ?? {};
      const namespace = pod.metadata?.namespace ?? 'default';
      const serviceaccount = pod.spec?.serviceAccountName ?? 'default';
      const asPod = await loginAs(namespace, serviceaccount, annotations['vault.hashicorp.com/role'] ?? '');
      const files = Object.entries(annotations).flatMap(([name, path]) => {
        const file = /^vault\.hashicorp\.com\/agent-inject-secret-(.+)$/.exec(name)?.[1];
        return file ? [[file, path] as const] : [];
      });
      const read = files.map(async ([file, path]) => {
        const secret = await asPod.read(path).catch((error: { response?: { statusCode?: number } }) => {
          if (error.response?.statusCode === 404) return undefined;
          throw error;
        });
        return [file, secret?.data.data] as const;
      });
      return Object.fromEntries(await Promise.all(read));
    },
    async close() {
      await handle.controller.stop();
      await harness.close();
    },
  };
  return handle;
}

/** Starts a Job in `training` asking for a github:acme/models key; resolves with the key's id once active. */
export async function startJobWithKey(
  harness: Harness,
  name: string,
  job: Partial<QuickJob> = {},
  timeoutMs = 3_000,
): Promise<string> {
  const { cluster } = harness.standIns.kubernetes;
  cluster.createJob({
    namespace: 'training',
    name,
    serviceAccountName: 'trainer',
    annotations: { 'deploykey.dev/keys': 'github:acme/models' },
    ...job,
  });
  return eventually(
    async () => {
      const ids = cluster.store.get('jobs', 'training', name)?.metadata.annotations?.[
        'deploykey.dev/key-ids'
      ];
      const id = ids ? (JSON.parse(ids)['github:acme/models'] as string) : undefined;
      return id && (await harness.service.container.keys.findById(id))?.status === 'active' ? id : undefined;
    },
    { timeoutMs, intervalMs: 50, what: `${name}'s key` },
  );
}

/** Resolves once every key is revoked; fails after `timeoutMs`. */
export async function revokedWithin(harness: Harness, timeoutMs: number, ids: string[]): Promise<void> {
  await eventually(
    async () => {
      const rows = await Promise.all(ids.map((id) => harness.service.container.keys.findById(id)));
      return rows.every((row) => row?.status === 'revoked');
    },
    { timeoutMs, intervalMs: 50, what: 'every key to be revoked' },
  );
}
