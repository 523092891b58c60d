import type { OwnersOf } from '../auth/access.ts';
import type { GitHost } from '../hosts/git-host.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { AccessDecision, PolicyRequest } from '../model/access.ts';
import type { RevokeScheduler } from '../queue/revoke.queue.ts';
import type { SecretStore } from '../vault/secret-store.ts';
import type { Caller } from './caller.ts';
import type { KeyRepository } from './key.repository.ts';
import type { TtlBounds } from './policy.ts';

export interface HostLookup {
  get(id: string): GitHost | undefined;
  ids(): string[];
}

/** Decides whether the caller may get this key; runs before any call to a Git host. */
export type Authorize = (caller: Caller, request: PolicyRequest) => Promise<AccessDecision>;

/** Everything the key service needs, as narrow interfaces, so the worker runs without the HTTP layer. */
export interface KeyServiceDeps {
  keys: KeyRepository;
  hosts: HostLookup;
  secrets: SecretStore;
  queue: Pick<RevokeScheduler, 'scheduleRevoke' | 'revokeNow' | 'cancel'>;
  clock: () => Date;
  metrics: Metrics;
  logger: Logger;
  systemActor: string;
  authorize: Authorize;
  ownersOf: OwnersOf;
  settings: { ttl: TtlBounds; pendingTimeoutSeconds: number; kubernetesAudience: string };
}
