// A service harness with the Kubernetes controller running in the test process against the
// Kubernetes stand-in, and what the tests ask of a Job and its keys.
import { BatchV1Api, CoreV1Api, KubeConfig, type V1Job } from '@kubernetes/client-node';
import vault from 'node-vault';
import { SANDBOX_OIDC_ISSUER_ID, sandboxAuthConfig } from '../../sandbox/stand-ins.ts';
import { type KubernetesController, startKubernetesController } from '../../src/kubernetes/controller.ts';
import { type Harness, startHarness } from './service-harness.ts';

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
  close(): Promise<void>;
}

export async function startControllerHarness(): Promise<ControllerHarness> {
  const harness = await startHarness({
    worker: true,
    fileConfig: (standIns) => ({
      ...sandboxAuthConfig(standIns),
      kubernetes: {
        kubeconfig: standIns.kubernetes.kubeconfigPath,
        oidcIssuerId: SANDBOX_OIDC_ISSUER_ID,
        sweepSeconds: 1,
        leaderRetrySeconds: 1,
      },
    }),
  });
  const kubeconfig = new KubeConfig();
  kubeconfig.loadFromFile(harness.standIns.kubernetes.kubeconfigPath);
  const controller = startKubernetesController(harness.service.container);
  await controller.leading;
  const vaultAs = (token?: string) =>
    vault({ endpoint: harness.standIns.vault.addr, ...(token ? { token } : {}), debug: () => undefined });
  const batch = kubeconfig.makeApiClient(BatchV1Api);
  const handle: ControllerHarness = {
    harness,
    batch,
    core: kubeconfig.makeApiClient(CoreV1Api),
    controller,
    readJob: (namespace, name) => batch.readNamespacedJob({ namespace, name }),
    async readAsPod(namespace, serviceAccount, role, path) {
      const jwt = await harness.standIns.oidc.mint(
        'kubernetes',
        { namespace, serviceaccount: serviceAccount },
        { audience: 'vault' },
      );
      const login = await vaultAs().kubernetesLogin({ role, jwt, mount_point: 'kubernetes' });
      const secret = await vaultAs(login.auth.client_token).read(
        `${harness.service.container.secrets.mount}/data/${path}`,
      );
      return secret.data.data;
    },
    async close() {
      await handle.controller.stop();
      await harness.close();
    },
  };
  return handle;
}
