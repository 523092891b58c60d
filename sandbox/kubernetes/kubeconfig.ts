// A kubeconfig for the stand-in, so `kubectl --kubeconfig …` and `KubeConfig.loadFromFile` use it.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';

import { TLS_SERVER_NAME } from './tls.ts';

export function kubeconfigFor(server: string, token: string, caPem: string, namespace = 'default') {
  const cluster = {
    server,
    'certificate-authority-data': Buffer.from(caPem).toString('base64'),
    'tls-server-name': TLS_SERVER_NAME,
  };
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'sandbox', cluster }],
    users: [{ name: 'deploykey-controller', user: { token } }],
    contexts: [{ name: 'sandbox', context: { cluster: 'sandbox', user: 'deploykey-controller', namespace } }],
    'current-context': 'sandbox',
    preferences: {},
  };
}

export async function writeKubeconfig(directory: string, server: string, token: string, caPem: string) {
  const path = join(directory, 'kubeconfig');
  // It carries the controller's bearer token: readable by its owner only.
  await writeFile(path, stringify(kubeconfigFor(server, token, caPem)), { mode: 0o600 });
  return path;
}
