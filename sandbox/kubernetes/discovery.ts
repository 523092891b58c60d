// Discovery as clients and kubectl read it: `/version`, the legacy `/api` and `/apis` documents
// (kubectl falls back to them when a server does not answer aggregated discovery), and one
// APIResourceList per group version.
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { RESOURCE_TYPES, type ResourceType, VERBS } from './resources.ts';

export const SERVER_VERSION = { major: '1', minor: '33', gitVersion: 'v1.33.1' };

const GROUPS = ['batch', 'coordination.k8s.io'];

const storageVersionHash = (type: ResourceType) =>
  createHash('sha256').update(`${type.apiVersion}/${type.kind}`).digest('base64').slice(0, 11);

const resourceEntry = (type: ResourceType) => ({
  name: type.plural,
  singularName: type.singular,
  namespaced: true,
  kind: type.kind,
  verbs: VERBS,
  ...(type.shortNames.length > 0 ? { shortNames: type.shortNames } : {}),
  ...(type.categories.length > 0 ? { categories: type.categories } : {}),
  storageVersionHash: storageVersionHash(type),
});

const groupEntry = (group: string) => {
  const version = { groupVersion: `${group}/v1`, version: 'v1' };
  return { name: group, versions: [version], preferredVersion: version };
};

export function registerDiscovery(app: FastifyInstance): void {
  app.get('/version', async () => ({
    ...SERVER_VERSION,
    gitCommit: '8adc0f041b8e7ad1d30e29cc59c6ae7a15e19828',
    gitTreeState: 'clean',
    buildDate: '2025-05-15T08:19:08Z',
    goVersion: 'go1.24.2',
    compiler: 'gc',
    platform: 'linux/amd64',
  }));
  for (const path of ['/healthz', '/livez', '/readyz']) {
    app.get(path, async (_request, reply) => reply.type('text/plain; charset=utf-8').send('ok'));
  }
  app.get('/api', async (request) => ({
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: request.host }],
  }));
  app.get('/api/v1', async () => ({
    kind: 'APIResourceList',
    groupVersion: 'v1',
    resources: RESOURCE_TYPES.filter((type) => type.group === '').map(resourceEntry),
  }));
  app.get('/apis', async () => ({ kind: 'APIGroupList', apiVersion: 'v1', groups: GROUPS.map(groupEntry) }));
  for (const group of GROUPS) {
    app.get(`/apis/${group}`, async () => ({ kind: 'APIGroup', apiVersion: 'v1', ...groupEntry(group) }));
    app.get(`/apis/${group}/v1`, async () => ({
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: `${group}/v1`,
      resources: RESOURCE_TYPES.filter((type) => type.group === group).map(resourceEntry),
    }));
  }
}
