// One adapter per configured host, looked up by the id callers name as `provider`. A host type is
// its transport here and its name in the configuration's `hosts[].type`.
import type { HostConfig } from '../config.ts';
import type { GitHost } from './git-host.ts';
import { createGiteaTransport } from './gitea.transport.ts';
import { createGithubTransport } from './github.transport.ts';
import { createGitlabTransport } from './gitlab.transport.ts';
import { createHostAdapter } from './host-adapter.ts';
import type { HostAdapterDeps } from './host-http.ts';
import type { HostTransportFactory } from './host-transport.ts';

const TRANSPORTS: Record<HostConfig['type'], HostTransportFactory> = {
  github: createGithubTransport,
  gitlab: createGitlabTransport,
  gitea: createGiteaTransport,
};

export interface HostRegistry {
  get(id: string): GitHost | undefined;
  ids(): string[];
}

export function createHost(config: HostConfig, deps: HostAdapterDeps): GitHost {
  return createHostAdapter(config, TRANSPORTS[config.type], withHostSettings(config, deps));
}

/** What the host's own entry says about waiting for it, over what every host gets. */
function withHostSettings(config: HostConfig, deps: HostAdapterDeps): HostAdapterDeps {
  const { requestTimeoutSeconds, maxRetryAfterSeconds } = config;
  return {
    ...deps,
    ...(requestTimeoutSeconds === undefined ? {} : { requestTimeoutMs: requestTimeoutSeconds * 1000 }),
    ...(maxRetryAfterSeconds === undefined
      ? {}
      : { retry: { ...deps.retry, maxWaitSeconds: maxRetryAfterSeconds } }),
  };
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
  };
}
