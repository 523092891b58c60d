// GitLab (gitlab.com or self-managed) through @gitbeaker/rest, on our own requester so rate limits,
// retries and timeouts behave as they do for GitHub.
import { GitbeakerRequestError, Gitlab } from '@gitbeaker/rest';
import type { HostConfig } from '../config.ts';
import { describeBody, hostErrorFromAnswer, hostErrorFromTransport } from './error-mapping.ts';
import type { AddDeployKeyInput, GitHost, HostDeployKey } from './git-host.ts';
import { HostError } from './git-host.ts';
import { gitlabRequesterFn } from './gitlab-requester.ts';
import {
  cloneUrlFor,
  DEFAULT_REQUEST_TIMEOUT_MS,
  type HostAdapterDeps,
  instrumentedFetch,
  isRepositoryPath,
  keyTypeAndBlob,
  retryPolicy,
} from './host-http.ts';
import { type HostBudget, schedulerForHost } from './host-scheduler.ts';
import { cachedKnownHosts, knownHostsFor } from './known-hosts.ts';

interface GitlabDeployKey {
  id: number;
  title: string;
  key: string;
  can_push?: boolean;
}

// GitLab.com allows an authenticated user 2,000 API requests a minute; writes keep well inside that.
const GITLAB_WRITES: HostBudget = {
  concurrency: 4,
  minIntervalMs: 0,
  requestsPerMinute: 600,
  maxQueueSeconds: 30,
};

// GitLab nests groups up to 20 levels deep; with the project that makes 21 path segments.
const MAX_PATH_SEGMENTS = 21;

/** `https://gitlab.example.com/api/v4` → `https://gitlab.example.com` (gitbeaker appends `/api/v4`). */
export function gitlabInstanceUrl(apiUrl: string): string {
  return apiUrl.replace(/\/+$/, '').replace(/\/api\/v4$/, '');
}

// GitLab stores `expires_at` to the second; rounding up keeps the host's expiry never earlier than ours.
export function gitlabExpiresAt(expiresAt: Date): string {
  return new Date(Math.ceil(expiresAt.getTime() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

function toHostKey(key: GitlabDeployKey): HostDeployKey {
  return {
    hostKeyId: String(key.id),
    title: key.title,
    publicKey: keyTypeAndBlob(key.key),
    readOnly: key.can_push !== true,
  };
}

export function createGitlabHost(config: HostConfig, deps: HostAdapterDeps): GitHost {
  const policy = retryPolicy(deps.retry);
  const logger = deps.logger.child({ host: config.id });
  const scheduler = schedulerForHost(config, GITLAB_WRITES, deps, logger);
  const api = new Gitlab({
    host: gitlabInstanceUrl(config.apiUrl),
    token: config.token,
    // Our requester times out each attempt; gitbeaker's own timeout would span every retry and page.
    queryTimeout: null,
    requesterFn: gitlabRequesterFn({
      fetch: instrumentedFetch({
        metrics: deps.metrics,
        hostId: config.id,
        timeoutMs: deps.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
        onAnswer: scheduler.observe,
      }),
      policy,
      logger,
    }),
  });

  const fail = (operation: string, error: unknown): HostError => {
    if (error instanceof HostError) return error;
    if (error instanceof GitbeakerRequestError && error.cause?.response) {
      const { response, description } = error.cause;
      return hostErrorFromAnswer(config.id, operation, {
        status: response.status,
        headers: Object.fromEntries(response.headers.entries()),
        message: describeBody(description) || `HTTP ${response.status}`,
      });
    }
    return hostErrorFromTransport(config.id, operation, error);
  };

  // gitbeaker URL-encodes the project id itself (`group/sub/name` → `group%2Fsub%2Fname`), so the
  // full path goes in as is; encoding it here too would ask for a project that does not exist.
  const projectId = (repository: string) => {
    if (!isRepositoryPath(repository, MAX_PATH_SEGMENTS)) {
      throw new HostError(config.id, 'invalid', `"${repository}" is not a GitLab project path (group/name)`);
    }
    return repository;
  };

  const deleteUnscheduled = async (project: string, hostKeyId: string) => {
    try {
      await api.DeployKeys.remove(project, Number(hostKeyId));
      return 'deleted' as const;
    } catch (error) {
      const mapped = fail('delete deploy key', error);
      if (mapped.kind === 'not-found') return 'already-gone' as const;
      throw mapped;
    }
  };

  const addUnscheduled = async (project: string, input: AddDeployKeyInput): Promise<HostDeployKey> => {
    // gitbeaker 43 does not declare `expiresAt` (GitLab 15.11+); it is sent snake_cased like any option.
    const options: { canPush: false } = {
      // Invariant: read-only always.
      canPush: false,
      expiresAt: gitlabExpiresAt(input.expiresAt),
    } as { canPush: false };
    let created: HostDeployKey;
    try {
      const key = await api.DeployKeys.create(project, input.title, input.publicKey, options);
      created = toHostKey(key as GitlabDeployKey);
    } catch (error) {
      throw fail('add deploy key', error);
    }
    if (!created.readOnly) {
      await deleteUnscheduled(project, created.hostKeyId);
      throw new HostError(
        config.id,
        'invalid',
        `${config.id} registered a deploy key with write access; removed it`,
      );
    }
    return created;
  };

  const knownHosts = cachedKnownHosts(() => knownHostsFor(config, undefined, logger), {
    ...(deps.knownHostsTtlMs === undefined ? {} : { ttlMs: deps.knownHostsTtlMs }),
  });

  return {
    id: config.id,
    type: 'gitlab',

    // A malformed project path is refused before it takes a turn from the budget.
    async addDeployKey(input: AddDeployKeyInput) {
      const project = projectId(input.repository);
      return scheduler.schedule({ kind: 'issue', caller: input.caller }, () =>
        addUnscheduled(project, input),
      );
    },

    checkCapacity(caller: string) {
      const refused = scheduler.refusal({ kind: 'issue', caller });
      if (refused) throw refused;
    },

    async deleteDeployKey(repository: string, hostKeyId: string) {
      const project = projectId(repository);
      return scheduler.schedule({ kind: 'revoke' }, () => deleteUnscheduled(project, hostKeyId));
    },

    async listDeployKeys(repository: string) {
      const project = projectId(repository);
      try {
        const keys = await api.DeployKeys.all({ projectId: project, perPage: 100 });
        return (keys as GitlabDeployKey[]).map(toHostKey);
      } catch (error) {
        throw fail('list deploy keys', error);
      }
    },

    knownHosts,

    cloneUrl: (repository: string) => cloneUrlFor(config.sshUrl, repository),
  };
}
