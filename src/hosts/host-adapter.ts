// The one Git host adapter: everything the service promises about a host's deploy keys, over a
// host type's transport. Writes are paced by the host's scheduler (revokes first, callers in turn),
// reads go straight out; both retry the same way (host-retry.ts) and fail with the same HostError.
import type { HostConfig } from '../config.ts';
import { toHostError } from './error-mapping.ts';
import {
  type AddDeployKeyInput,
  type GitHost,
  type HostDeployKey,
  HostError,
  TITLE_PREFIX,
} from './git-host.ts';
import {
  cloneUrlFor,
  DEFAULT_REQUEST_TIMEOUT_MS,
  type HostAdapterDeps,
  instrumentedFetch,
  isRepositoryPath,
  keyTypeAndBlob,
  retryPolicy,
} from './host-http.ts';
import { retryingHostCalls } from './host-retry.ts';
import { createHostScheduler, type HostBudget, type HostLane, type HostScheduler } from './host-scheduler.ts';
import type { HostTransport, HostTransportFactory } from './host-transport.ts';
import { cachedKnownHosts, knownHostsFor } from './known-hosts.ts';

/** The configured budget, each setting not given taken from the host type's own. */
function budgetFor(config: HostConfig, defaults: HostBudget): HostBudget {
  return {
    concurrency: config.writes?.concurrency ?? defaults.concurrency,
    minIntervalMs: config.writes?.minIntervalMs ?? defaults.minIntervalMs,
    requestsPerMinute: config.writes?.requestsPerMinute ?? defaults.requestsPerMinute,
    maxQueueSeconds: config.writes?.maxQueueSeconds ?? defaults.maxQueueSeconds,
  };
}

export function createHostAdapter(
  config: HostConfig,
  createTransport: HostTransportFactory,
  deps: HostAdapterDeps,
): GitHost {
  const logger = deps.logger.child({ host: config.id });
  const retry = { policy: retryPolicy(deps.retry), logger, timers: deps.timers };
  const transport: HostTransport = createTransport({
    config,
    logger,
    fetch: instrumentedFetch({
      metrics: deps.metrics,
      hostId: config.id,
      timeoutMs: deps.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      onAnswer: (status, headers) => scheduler.observe(status, headers),
    }),
  });
  const scheduler: HostScheduler = createHostScheduler({
    hostId: config.id,
    budget: budgetFor(config, transport.writeBudget),
    logger,
    metrics: deps.metrics,
    clock: deps.clock,
    timers: deps.timers,
    ...(deps.sharedPacing ? { shared: deps.sharedPacing } : {}),
  });

  const attempt =
    <T>(operation: string, call: () => Promise<T>) =>
    async (): Promise<T> => {
      try {
        return await call();
      } catch (error) {
        throw toHostError(config.id, operation, error, transport.answerOf, deps.clock().getTime());
      }
    };

  // A read holds no slot, so it waits out the host's pause itself; a write waits in the queue.
  const read = <T>(operation: string, call: () => Promise<T>) =>
    retryingHostCalls(retry, attempt(operation, call), () => deps.timers.sleep(scheduler.heldForMs()));
  const write = <T>(lane: HostLane, operation: string, call: () => Promise<T>) =>
    retryingHostCalls(
      retry,
      () => scheduler.schedule(lane, attempt(operation, call)),
      async () => {},
    );

  // Refused before it takes a turn from the budget or reaches the host.
  const checked = (repository: string) => {
    if (!isRepositoryPath(repository, transport.maxPathSegments)) {
      throw new HostError(config.id, 'invalid', `"${repository}" is not ${transport.repositoryShape}`);
    }
    return repository;
  };

  const listDeployKeys = async (repository: string): Promise<HostDeployKey[]> => {
    checked(repository);
    const keys: HostDeployKey[] = [];
    for (let page: number | undefined = 1; page !== undefined; ) {
      const current: number = page;
      const result = await read('list deploy keys', () => transport.listPage(repository, current));
      keys.push(...result.keys);
      page = result.nextPage;
    }
    return keys;
  };

  const deleteKey = async (repository: string, hostKeyId: string) => {
    try {
      await write({ kind: 'revoke' }, 'delete deploy key', () => transport.deleteKey(repository, hostKeyId));
      return 'deleted' as const;
    } catch (error) {
      if (error instanceof HostError && error.kind === 'not-found') return 'already-gone' as const;
      throw error;
    }
  };

  // A create sent again after a lost answer meets its own earlier success on some hosts; that same
  // key, title and read-only flag on this repository is our key.
  const ownEarlierAdd = async (input: AddDeployKeyInput, refusal: HostError) => {
    if (!transport.alreadyRegistered?.test(refusal.message)) return undefined;
    const wanted = keyTypeAndBlob(input.publicKey);
    const keys = await listDeployKeys(input.repository);
    return keys.find((key) => key.publicKey === wanted && key.title === input.title && key.readOnly);
  };

  const addDeployKey = async (input: AddDeployKeyInput): Promise<HostDeployKey> => {
    const repository = checked(input.repository);
    // Invariant: we only touch our own keys, so every key we add says it is ours.
    if (!input.title.startsWith(TITLE_PREFIX)) {
      throw new HostError(config.id, 'invalid', `a deploy key title must start with ${TITLE_PREFIX}`);
    }
    const key = { title: input.title, publicKey: input.publicKey, expiresAt: input.expiresAt };
    let added: HostDeployKey;
    try {
      added = await write({ kind: 'issue', caller: input.caller }, 'add deploy key', () =>
        transport.addKey(repository, key),
      );
    } catch (error) {
      const earlier = error instanceof HostError ? await ownEarlierAdd(input, error) : undefined;
      if (earlier) return earlier;
      throw error;
    }
    // Invariant: read-only always, whatever the host made of our request.
    if (!added.readOnly) {
      await deleteKey(repository, added.hostKeyId);
      throw new HostError(
        config.id,
        'invalid',
        `${config.id} registered a deploy key with write access; removed it`,
      );
    }
    return added;
  };

  const { fetchMeta } = transport;
  const readMeta = fetchMeta ? () => read('read /meta', fetchMeta) : undefined;
  const knownHosts = cachedKnownHosts(() => knownHostsFor(config, readMeta, logger), {
    ...(deps.knownHostsTtlMs === undefined ? {} : { ttlMs: deps.knownHostsTtlMs }),
    now: () => deps.clock().getTime(),
  });

  return {
    id: config.id,
    type: config.type,
    addDeployKey,
    checkCapacity(caller: string) {
      const refused = scheduler.refusal({ kind: 'issue', caller });
      if (refused) throw refused;
    },
    deleteDeployKey: async (repository, hostKeyId) => deleteKey(checked(repository), hostKeyId),
    listDeployKeys,
    knownHosts,
    cloneUrl: (repository: string) => cloneUrlFor(config.sshUrl, repository),
  };
}
