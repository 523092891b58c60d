import type { GitHost } from '../hosts/git-host.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { RevokeScheduler } from '../queue/revoke.queue.ts';
import type { SecretStore } from '../vault/secret-store.ts';
import type { KeyRepository } from './key.repository.ts';
import type { TtlBounds } from './policy.ts';

export interface HostLookup {
  get(id: string): GitHost | undefined;
  ids(): string[];
}

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
  settings: { ttl: TtlBounds; pendingTimeoutSeconds: number };
}
