// GitHub (github.com or GitHub Enterprise Server) through Octokit. Writes go through the host's
// scheduler, which paces them and waits out rate limits within our bound; plugin-retry retries 5xx
// and connection failures a few times quickly.
import { retry } from '@octokit/plugin-retry';
import { Octokit } from '@octokit/rest';
import type { HostConfig } from '../config.ts';
import { describeBody, hostErrorFromAnswer, hostErrorFromTransport } from './error-mapping.ts';
import type { AddDeployKeyInput, GitHost, HostDeployKey } from './git-host.ts';
import { HostError } from './git-host.ts';
import {
  cloneUrlFor,
  DEFAULT_REQUEST_TIMEOUT_MS,
  type HostAdapterDeps,
  instrumentedFetch,
  isRepositoryPath,
  isTimeoutError,
  keyTypeAndBlob,
  retryPolicy,
} from './host-http.ts';
import { type HostBudget, type HostLane, retryingRateLimits, schedulerForHost } from './host-scheduler.ts';
import { cachedKnownHosts, knownHostsFor } from './known-hosts.ts';

const GithubOctokit = Octokit.plugin(retry);

// GitHub asks integrations to send content-creating requests serially, at least a second apart,
// and documents a secondary limit of 80 of them a minute; a GitHub Enterprise Server may allow more.
const GITHUB_WRITES: HostBudget = {
  concurrency: 1,
  minIntervalMs: 1_000,
  requestsPerMinute: 80,
  maxQueueSeconds: 30,
};

interface GithubDeployKey {
  id: number;
  key: string;
  title: string;
  read_only: boolean;
}

interface OctokitFailure {
  status?: number;
  response?: { status: number; headers: Record<string, string | undefined>; data: unknown };
  cause?: unknown;
}

// The one place credentials reach Octokit; GitHub App credentials would pick @octokit/auth-app here.
function authOptions(config: HostConfig): { auth: string } {
  return { auth: config.token };
}

function toHostKey(key: GithubDeployKey): HostDeployKey {
  return {
    hostKeyId: String(key.id),
    title: key.title,
    publicKey: keyTypeAndBlob(key.key),
    readOnly: key.read_only,
  };
}

export function createGithubHost(config: HostConfig, deps: HostAdapterDeps): GitHost {
  const policy = retryPolicy(deps.retry);
  const logger = deps.logger.child({ host: config.id });
  const scheduler = schedulerForHost(config, GITHUB_WRITES, deps, logger);

  const scheduled = <T>(lane: HostLane, call: () => Promise<T>) =>
    retryingRateLimits(policy, logger, () => scheduler.schedule(lane, call));

  const octokit = new GithubOctokit({
    ...authOptions(config),
    baseUrl: config.apiUrl.replace(/\/+$/, ''),
    userAgent: 'deploykey-rotator',
    log: {
      debug: () => {},
      info: () => {},
      warn: (message: string) => logger.warn(message),
      // Octokit logs every failed request as an error, a 404 on a key already gone included; the
      // code that handles the failure says what it meant.
      error: (message: string) => logger.debug(message),
    },
    request: {
      fetch: instrumentedFetch({
        metrics: deps.metrics,
        hostId: config.id,
        timeoutMs: deps.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
        onAnswer: scheduler.observe,
      }),
    },
    retry: {
      retries: policy.maxRetries,
      retryAfterBaseValue: policy.backoffBaseMs,
      // Rate limits are the scheduler's to wait out: plugin-retry would retry them on its own short
      // backoff, ignoring `retry-after` and our wait bound.
      doNotRetry: [400, 401, 403, 404, 410, 422, 429, 451],
    },
  });

  const fail = (operation: string, error: unknown): HostError => {
    if (error instanceof HostError) return error;
    if (isTimeoutError(error)) return hostErrorFromTransport(config.id, operation, error);
    const failure = error as OctokitFailure;
    if (failure.response) {
      return hostErrorFromAnswer(config.id, operation, {
        status: failure.response.status,
        headers: failure.response.headers,
        message: describeBody(failure.response.data) || `HTTP ${failure.response.status}`,
      });
    }
    return hostErrorFromTransport(config.id, operation, failure.cause ?? error);
  };

  const split = (repository: string) => {
    if (!isRepositoryPath(repository, 2)) {
      throw new HostError(config.id, 'invalid', `"${repository}" is not a GitHub repository (owner/name)`);
    }
    const [owner = '', repo = ''] = repository.split('/');
    return { owner, repo };
  };

  const fetchMeta = async () => {
    try {
      return (await octokit.rest.meta.get()).data;
    } catch (error) {
      throw fail('read /meta', error);
    }
  };

  const knownHosts = cachedKnownHosts(() => knownHostsFor(config, fetchMeta, logger), {
    ...(deps.knownHostsTtlMs === undefined ? {} : { ttlMs: deps.knownHostsTtlMs }),
  });

  const deleteUnscheduled = async (repository: string, hostKeyId: string) => {
    const { owner, repo } = split(repository);
    try {
      await octokit.rest.repos.deleteDeployKey({ owner, repo, key_id: Number(hostKeyId) });
      return 'deleted' as const;
    } catch (error) {
      const mapped = fail('delete deploy key', error);
      if (mapped.kind === 'not-found') return 'already-gone' as const;
      throw mapped;
    }
  };

  const listDeployKeys = async (repository: string) => {
    const { owner, repo } = split(repository);
    try {
      const keys = await octokit.paginate(octokit.rest.repos.listDeployKeys, { owner, repo, per_page: 100 });
      return keys.map(toHostKey);
    } catch (error) {
      throw fail('list deploy keys', error);
    }
  };

  // A create retried after a lost answer (ours or plugin-retry's) meets its own earlier success as
  // "key is already in use"; that same key, title and read-only flag on this repository is our key.
  const findOwnEarlierAdd = async (input: AddDeployKeyInput) => {
    const wanted = keyTypeAndBlob(input.publicKey);
    const keys = await listDeployKeys(input.repository);
    return keys.find((key) => key.publicKey === wanted && key.title === input.title && key.readOnly);
  };

  const addUnscheduled = async (input: AddDeployKeyInput): Promise<HostDeployKey> => {
    const { owner, repo } = split(input.repository);
    let created: HostDeployKey;
    try {
      const response = await octokit.rest.repos.createDeployKey({
        owner,
        repo,
        title: input.title,
        key: input.publicKey,
        // Invariant: read-only always. GitHub makes a key read-write when `read_only` is omitted.
        read_only: true,
      });
      created = toHostKey(response.data);
    } catch (error) {
      const mapped = fail('add deploy key', error);
      const earlier = /already in use/i.test(mapped.message) ? await findOwnEarlierAdd(input) : undefined;
      if (earlier) return earlier;
      throw mapped;
    }
    if (!created.readOnly) {
      await deleteUnscheduled(input.repository, created.hostKeyId);
      throw new HostError(
        config.id,
        'invalid',
        `${config.id} registered a deploy key with write access; removed it`,
      );
    }
    return created;
  };

  return {
    id: config.id,
    type: 'github',

    // A malformed repository is refused before it takes a turn from the budget.
    async addDeployKey(input: AddDeployKeyInput) {
      split(input.repository);
      return scheduled({ kind: 'issue', caller: input.caller }, () => addUnscheduled(input));
    },

    checkCapacity(caller: string) {
      const refused = scheduler.refusal({ kind: 'issue', caller });
      if (refused) throw refused;
    },

    async deleteDeployKey(repository: string, hostKeyId: string) {
      split(repository);
      return scheduled({ kind: 'revoke' }, () => deleteUnscheduled(repository, hostKeyId));
    },

    listDeployKeys,

    knownHosts,

    cloneUrl: (repository: string) => cloneUrlFor(config.sshUrl, repository),
  };
}
