// One adapter per configured host, looked up by the id callers name as `provider`.
import type { HostConfig } from '../config.ts';
import type { GitHost } from './git-host.ts';
import { createGithubHost } from './github.ts';
import { createGitlabHost } from './gitlab.ts';
import type { HostAdapterDeps } from './host-http.ts';

export interface HostRegistry {
  get(id: string): GitHost | undefined;
  ids(): string[];
  all(): GitHost[];
}

export function createHost(config: HostConfig, deps: HostAdapterDeps): GitHost {
  return config.type === 'github' ? createGithubHost(config, deps) : createGitlabHost(config, deps);
}

export function createHostRegistry(hosts: HostConfig[], deps: HostAdapterDeps): HostRegistry {
  const byId = new Map<string, GitHost>();
  for (const config of hosts) {
    if (byId.has(config.id)) throw new Error(`host id "${config.id}" is configured twice`);
    byId.set(config.id, createHost(config, deps));
  }
  return {
    get: (id) => byId.get(id),
    ids: () => [...byId.keys()],
    all: () => [...byId.values()],
  };
}
