// The one Git host adapter: everything the service promises about a host's deploy keys, over a
// host type's transport. Writes are paced by the host's scheduler (revokes first, callers in turn),
// reads go straight out; both retry the same way (host-retry.ts) and fail with the same HostError.
import type { HostConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import { toHostError } from './error-mapping.ts';
import {
  type AddDeployKeyInput,
  type CiJobQuery,
  type CiJobStatus,
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
import type { HostPace, HostTransport, HostTransportFactory } from './host-transport.ts';
import { cachedKnownHosts, knownHostsFor } from './known-hosts.ts';
import { tokenExpiry } from './token-expiry.ts';

// Longest a write waits for its turn unless configured: beyond it a caller is better told to retry.
const MAX_QUEUE_SECONDS = 30;

/** The configured budget, each setting not given taken from the host type's own pace. */
function budgetFor(config: HostConfig, pace: HostPace): HostBudget {
  return {
    concurrency: config.writes?.concurrency ?? pace.concurrency,
    minIntervalMs: config.writes?.minIntervalMs ?? pace.minIntervalMs,
    requestsPerMinute: config.writes?.requestsPerMinute ?? pace.requestsPerMinute,
    maxQueueSeconds: config.writes?.maxQueueSeconds ?? MAX_QUEUE_SECONDS,
  };
}

interface HostParts {
  config: HostConfig;
  transport: HostTransport;
  scheduler: HostScheduler;
  deps: HostAdapterDeps;
  logger: Logger;
}

/**
 * Single attempts made whole: errors mapped to HostError, retried as host-retry.ts decides. A read
 * holds no slot, so it waits out the host's pause itself; a write waits in the host's queue.
 */
function hostCalls({ config, transport, scheduler, deps, logger }: HostParts) {
  const retry = { policy: retryPolicy(deps.retry), logger, timers: deps.timers };
  const attempt =
    <T>(operation: string, call: () => Promise<T>) =>
    async (): Promise<T> => {
      try {
        return await call();
      } catch (error) {
        throw toHostError(config.id, operation, error, transport.answerOf, deps.clock().getTime());
      }
    };
  return {
    read: <T>(operation: string, call: () => Promise<T>) =>
      retryingHostCalls(retry, attempt(operation, call), () => deps.timers.sleep(scheduler.heldForMs())),
    // One request, no retry, nothing sent while the host asks us to wait: for periodic checks that
    // are simply made again next time.
    once: <T>(operation: string, call: () => Promise<T>): Promise<T> => {
      const heldMs = scheduler.heldForMs();
      if (heldMs <= 0) return attempt(operation, call)();
      const retryAfterSeconds = Math.ceil(heldMs / 1000);
      const message = `${config.id} asked us to wait ${retryAfterSeconds} s; not asked to ${operation}`;
      return Promise.reject(new HostError(config.id, 'rate-limited', message, { retryAfterSeconds }));
    },
    write: <T>(lane: HostLane, operation: string, call: () => Promise<T>) =>
      retryingHostCalls(
        retry,
        () => scheduler.schedule(lane, attempt(operation, call)),
        async () => {},
      ),
    // Refused before it takes a turn from the budget or reaches the host.
    checked(repository: string) {
      if (!isRepositoryPath(repository, transport.maxPathSegments)) {
        throw new HostError(config.id, 'invalid', `"${repository}" is not ${transport.repositoryShape}`);
      }
      return repository;
    },
  };
}

function deployKeyOperations(parts: HostParts) {
  const { config, transport } = parts;
  const { read, write, checked } = hostCalls(parts);

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

  const deleteDeployKey = async (repository: string, hostKeyId: string) => {
    checked(repository);
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
      await deleteDeployKey(repository, added.hostKeyId);
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
  const checkAccess = async (repository: string) => {
    const repositoryChecked = checked(repository);
    const check = transport.checkAccess;
    if (check) await read('look up the App installation', () => check(repositoryChecked));
  };
  return { listDeployKeys, deleteDeployKey, addDeployKey, checkAccess, readMeta };
}

const isNotFound = (error: unknown) => error instanceof HostError && error.kind === 'not-found';

function ciJobOperations(parts: HostParts) {
  const { transport } = parts;
  const { once, checked } = hostCalls(parts);
  return async (query: CiJobQuery): Promise<CiJobStatus> => {
    const { ciJobStatus, readRepository } = transport;
    if (!ciJobStatus || !readRepository) return { state: 'unknown' };
    const repository = checked(query.repository);
    try {
      return await once('read a CI job', () => ciJobStatus(query));
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    // A 404 is a run deleted from the repository, or a repository our credentials cannot see: only
    // the first says the job is over.
    try {
      await once('read the repository', () => readRepository(repository));
    } catch (error) {
      if (isNotFound(error)) return { state: 'unknown' };
      throw error;
    }
    return { state: 'ended', conclusion: 'deleted' };
  };
}

export function createHostAdapter(
  config: HostConfig,
  createTransport: HostTransportFactory,
  deps: HostAdapterDeps,
): GitHost {
  const logger = deps.logger.child({ host: config.id });
  const transport: HostTransport = createTransport({
    config,
    logger,
    clock: deps.clock,
    fetch: instrumentedFetch({
      metrics: deps.metrics,
      hostId: config.id,
      timeoutMs: deps.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      onAnswer: (status, headers) => scheduler.observe(status, headers),
    }),
  });
  const scheduler: HostScheduler = createHostScheduler({
    hostId: config.id,
    budget: budgetFor(config, transport.writePace),
    logger,
    metrics: deps.metrics,
    clock: deps.clock,
    timers: deps.timers,
    ...(deps.sharedPacing ? { shared: deps.sharedPacing } : {}),
  });
  const parts = { config, transport, scheduler, deps, logger };
  const { readMeta, ...operations } = deployKeyOperations(parts);

  return {
    id: config.id,
    type: config.type,
    ...operations,
    ciJobStatus: ciJobOperations(parts),
    checkCapacity(caller: string) {
      const refused = scheduler.refusal({ kind: 'issue', caller });
      if (refused) throw refused;
    },
    knownHosts: cachedKnownHosts(() => knownHostsFor(config, readMeta, logger), {
      ...(deps.knownHostsTtlMs === undefined ? {} : { ttlMs: deps.knownHostsTtlMs }),
      now: () => deps.clock().getTime(),
    }),
    cloneUrl: (repository: string) => cloneUrlFor(config.sshUrl, repository),
    ...tokenExpiry(config.id, transport, deps.clock),
  };
}
