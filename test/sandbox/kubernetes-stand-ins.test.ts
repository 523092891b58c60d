// The Kubernetes stand-in as `startStandIns()` wires it: reachable through its kubeconfig, and its
// pods' service account tokens accepted by the sandbox's own Vault.
import { BatchV1Api, KubeConfig } from '@kubernetes/client-node';
import vault from 'node-vault';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type StandIns, startStandIns } from '../../sandbox/stand-ins.ts';
import { kubeRequest } from '../support/kubernetes-http.ts';

let standIns: StandIns;

beforeAll(async () => {
  standIns = await startStandIns();
});
afterAll(() => standIns.close());

it('serves the API at kubernetes.api with the token its kubeconfig carries', async () => {
  const kubeconfig = new KubeConfig();
  kubeconfig.loadFromFile(standIns.kubernetes.kubeconfigPath);
  expect(kubeconfig.getCurrentCluster()?.server).toBe(standIns.kubernetes.api);
  expect(kubeconfig.getCurrentUser()?.token).toBe(standIns.kubernetes.token);
  const batch = kubeconfig.makeApiClient(BatchV1Api);
  await batch.createNamespacedJob({
    namespace: 'training',
    body: {
      metadata: { name: 'train-1' },
      spec: {
        template: {
          spec: {
            serviceAccountName: 'trainer',
            restartPolicy: 'Never',
            containers: [{ name: 'c', image: 'busybox:1.36' }],
          },
        },
      },
    },
  });
  expect((await batch.listJobForAllNamespaces()).items.map((job) => job.metadata?.name)).toEqual(['train-1']);
  const unauthenticated = await kubeRequest(standIns.kubernetes, '/apis/batch/v1/jobs', { token: 'guess' });
  expect(unauthenticated.status).toBe(401);
});

it("logs a pod in to the sandbox's Vault with its service account token", async () => {
  const cluster = standIns.kubernetes.cluster;
  cluster.createJob({ namespace: 'ml', name: 'train-2', serviceAccountName: 'trainer' });
  const pod = await cluster.waitFor(() => cluster.store.list('pods', 'ml')[0]);
  const { token } = await standIns.kubernetes.podToken('ml', pod.metadata.name!, { audience: 'vault' });
  const root = vault({ endpoint: standIns.vault.addr, token: standIns.vault.token });
  await root.write('auth/kubernetes/role/train-2', {
    bound_service_account_names: ['trainer'],
    bound_service_account_namespaces: ['ml'],
    audience: 'vault',
    token_policies: ['default'],
  });
  const login = await vault({ endpoint: standIns.vault.addr }).kubernetesLogin({
    role: 'train-2',
    jwt: token,
    mount_point: 'kubernetes',
  });
  expect(login.auth.client_token).toMatch(/^hvs\./);
  const wrongAudience = await standIns.kubernetes.podToken('ml', pod.metadata.name!, {
    audience: 'elsewhere',
  });
  await expect(
    vault({ endpoint: standIns.vault.addr }).kubernetesLogin({
      role: 'train-2',
      jwt: wrongAudience.token,
      mount_point: 'kubernetes',
    }),
  ).rejects.toMatchObject({ response: { statusCode: 403 } });
});
