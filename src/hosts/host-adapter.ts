// The one Git host adapter: everything the service promises about a host's deploy keys, over a
// host type's transport per credential (credential-pool.ts). Writes are paced by each credential's
// scheduler (revokes first, callers in turn), reads go straight out; both retry the same way
// (host-retry.ts) and fail with the same HostError.
import type { HostConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import {
  type CredentialPool,
  createCredentialPool,
  createPoolMembers,
  type PoolMember,
} from './credential-pool.ts';
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
  type HostAdapterDeps,
  isRepositoryPath,
  keyTypeAndBlob,
  retryPolicy,
} from './host-http.ts';
import { retryingHostCalls } from './host-retry.ts';
import type { HostBudget, HostLane } from './host-scheduler.ts';
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
  /** What every credential's transport says alike: the host type's shapes and quirks. */
  transport: HostTransport;
  pool: CredentialPool;
  deps: HostAdapterDeps;
  logger: Logger;
}

type TransportCall<T> = (transport: HostTransport) => Promise<T>;

/**
 * Single attempts made whole: errors mapped to HostError, retried as host-retry.ts decides. A read
 * holds no slot, so it waits out its credential's pause itself; a write waits in the queue of the
 * credential that can start it soonest, chosen again on every retry.
 */
function hostCalls({ config, transport, pool, deps, logger }: HostParts) {
  const retry = { policy: retryPolicy(deps.retry), logger, timers: deps.timers };
  const attempt =
    <T>(member: PoolMember, operation: string, call: TransportCall<T>) =>
    async (): Promise<T> => {
      try {
        return await call(member.transport);
      } catch (error) {
        throw toHostError(config.id, operation, error, member.transport.answerOf, deps.clock().getTime());
      }
    };
  const readOn = <T>(member: PoolMember, operation: string, call: TransportCall<T>) =>
    retryingHostCalls(retry, attempt(member, operation, call), () =>
      deps.timers.sleep(member.scheduler.heldForMs()),
    );
  const checkOn = (repository: string) => async (member: PoolMember) => {
    const check = member.transport.checkAccess;
    if (check) await readOn(member, 'look up the App installation', () => check(repository));
  };
  const reaching = (repository: string) => pool.reaching(repository, checkOn(repository));
  // One credential is the one to use: its own request fails as a check would, without the lookup.
  const candidates = async (repository: string) =>
    pool.members.length === 1 ? pool.members : reaching(repository);
  return {
    reaching,
    readFirst: <T>(operation: string, call: TransportCall<T>) =>
      readOn(pool.members[0] as PoolMember, operation, call),
    read: async <T>(repository: string, operation: string, call: TransportCall<T>) =>
      pool.firstAccepting(pool.forRead(await candidates(repository)), (member) =>
        readOn(member, operation, call),
      ),
    // One request, no retry, nothing sent while the host asks us to wait: for periodic checks that
    // are simply made again next time.
    once: async <T>(repository: string, operation: string, call: TransportCall<T>): Promise<T> => {
      const member = pool.forRead(await candidates(repository))[0] as PoolMember;
      const heldMs = member.scheduler.heldForMs();
      if (heldMs <= 0) return attempt(member, operation, call)();
      const retryAfterSeconds = Math.ceil(heldMs / 1000);
      const message = `${config.id} asked us to wait ${retryAfterSeconds} s; not asked to ${operation}`;
      throw new HostError(config.id, 'rate-limited', message, { retryAfterSeconds });
    },
    write: <T>(repository: string, lane: HostLane, operation: string, call: TransportCall<T>) =>
      retryingHostCalls(
        retry,
        async () =>
          pool.firstAccepting(pool.forWrite(await candidates(repository), lane), (member) =>
            member.scheduler.schedule(lane, attempt(member, operation, call)),
          ),
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
  const { read, readFirst, reaching, write, checked } = hostCalls(parts);

  const listDeployKeys = async (repository: string): Promise<HostDeployKey[]> => {
    checked(repository);
    const keys: HostDeployKey[] = [];
    for (let page: number | undefined = 1; page !== undefined; ) {
      const current: number = page;
      const result = await read(repository, 'list deploy keys', (via) => via.listPage(repository, current));
      keys.push(...result.keys);
      page = result.nextPage;
    }
    return keys;
  };

  const deleteDeployKey = async (repository: string, hostKeyId: string) => {
    checked(repository);
    try {
      // A credential that cannot see the repository also answers 404: the key counts as gone only
      // when every credential that reaches the owner said so.
      await write(repository, { kind: 'revoke' }, 'delete deploy key', (via) =>
        via.deleteKey(repository, hostKeyId),
      );
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
      added = await write(repository, { kind: 'issue', caller: input.caller }, 'add deploy key', (via) =>
        via.addKey(repository, key),
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

  const readMeta = transport.fetchMeta
    ? () => readFirst('read /meta', (via) => (via.fetchMeta as NonNullable<typeof via.fetchMeta>)())
    : undefined;
  const checkAccess = async (repository: string) => {
    await reaching(checked(repository));
  };
  return { listDeployKeys, deleteDeployKey, addDeployKey, checkAccess, readMeta };
}

const isNotFound = (error: unknown) => error instanceof HostError && error.kind === 'not-found';

function ciJobOperations(parts: HostParts) {
  const { transport } = parts;
  const { once, checked } = hostCalls(parts);
  return async (query: CiJobQuery): Promise<CiJobStatus> => {
    if (!transport.ciJobStatus || !transport.readRepository) return { state: 'unknown' };
    const repository = checked(query.repository);
    try {
      return await once(repository, 'read a CI job', (via) => (via.ciJobStatus as CiJobRead)(query));
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    // A 404 is a run deleted from the repository, or a repository our credentials cannot see: only
    // the first says the job is over.
    try {
      await once(repository, 'read the repository', (via) =>
        (via.readRepository as RepositoryRead)(repository),
      );
    } catch (error) {
      if (isNotFound(error)) return { state: 'unknown' };
      throw error;
    }
    return { state: 'ended', conclusion: 'deleted' };
  };
}

type CiJobRead = NonNullable<HostTransport['ciJobStatus']>;
type RepositoryRead = NonNullable<HostTransport['readRepository']>;

export function createHostAdapter(
  config: HostConfig,
  createTransport: HostTransportFactory,
  deps: HostAdapterDeps,
): GitHost {
  const logger = deps.logger.child({ host: config.id });
  const members = createPoolMembers(config, createTransport, deps, logger, (pace) => budgetFor(config, pace));
  const pool = createCredentialPool(members, logger);
  const transport = (members[0] as PoolMember).transport;
  const parts = { config, transport, pool, deps, logger };
  const { readMeta, ...operations } = deployKeyOperations(parts);

  return {
    id: config.id,
    type: config.type,
    ...operations,
    ciJobStatus: ciJobOperations(parts),
    checkCapacity(caller: string) {
      const refused = pool.refusal({ kind: 'issue', caller });
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
