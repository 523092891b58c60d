// GitLab (gitlab.com or self-managed) through @gitbeaker/rest on our own one-attempt requester;
// the adapter core (host-adapter.ts) retries, paces and maps errors.
import { GitbeakerRequestError, Gitlab } from '@gitbeaker/rest';
import { gitlabJobStatus } from './ci-job-status.ts';
import { describeBody, type FailedAnswer } from './error-mapping.ts';
import type { HostDeployKey } from './git-host.ts';
import { gitlabRequesterFn } from './gitlab-requester.ts';
import { keyTypeAndBlob } from './host-http.ts';
import { hostTokenReader } from './host-token.ts';
import type { HostPace, HostTransport, TransportContext } from './host-transport.ts';

interface GitlabDeployKey {
  id: number;
  title: string;
  key: string;
  can_push?: boolean;
}

// GitLab.com allows an authenticated user 2,000 API requests a minute; writes keep well inside that.
const GITLAB_WRITES: HostPace = { concurrency: 4, minIntervalMs: 0, requestsPerMinute: 600 };

const PER_PAGE = 100;

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

// gitbeaker URL-encodes the project id itself (`group/sub/name` → `group%2Fsub%2Fname`), so the
// full path goes in as is; encoding it here too would ask for a project that does not exist.
export function createGitlabTransport(context: TransportContext): HostTransport {
  const { config, fetch } = context;
  const token = hostTokenReader(context);
  const api = new Gitlab({
    host: gitlabInstanceUrl(config.apiUrl),
    // Asked for on every request, so a rotated token file takes effect without a restart.
    token: async () => token(),
    // Our fetch times out each attempt; gitbeaker's own timeout would span every page.
    queryTimeout: null,
    requesterFn: gitlabRequesterFn(fetch),
  });

  return {
    repositoryShape: 'a GitLab project path (group/name)',
    // GitLab nests groups up to 20 levels deep; with the project that makes 21 path segments.
    maxPathSegments: 21,
    writePace: GITLAB_WRITES,

    // GitLab answers a key already on the project with that key, so a repeated add needs no care.
    async addKey(project, key) {
      // gitbeaker 43 does not declare `expiresAt` (GitLab 15.11+); it is sent snake_cased like any option.
      const options = {
        // Invariant: read-only always.
        canPush: false,
        expiresAt: gitlabExpiresAt(key.expiresAt),
      } as { canPush: false };
      return toHostKey(
        (await api.DeployKeys.create(project, key.title, key.publicKey, options)) as GitlabDeployKey,
      );
    },

    async deleteKey(project, hostKeyId) {
      await api.DeployKeys.remove(project, Number(hostKeyId));
    },

    async listPage(project, page) {
      const { data, paginationInfo } = await api.DeployKeys.all({
        projectId: project,
        perPage: PER_PAGE,
        page,
        maxPages: 1,
        showExpanded: true,
      });
      return {
        keys: (data as GitlabDeployKey[]).map(toHostKey),
        nextPage: paginationInfo.next ?? undefined,
      };
    },

    async ciJobStatus(query) {
      if (query.kind !== 'gitlab-job') return { state: 'unknown' };
      const job = await api.Jobs.show(query.repository, Number(query.jobId));
      return gitlabJobStatus(job as { status?: string; failure_reason?: string | null });
    },

    async readRepository(project) {
      await api.Projects.show(project);
    },

    async credentialExpiry() {
      return (await api.PersonalAccessTokens.show()).expires_at ?? null;
    },

    answerOf(error): FailedAnswer | undefined {
      if (!(error instanceof GitbeakerRequestError) || !error.cause?.response) return undefined;
      const { response, description } = error.cause;
      return {
        status: response.status,
        headers: Object.fromEntries(response.headers.entries()),
        message: describeBody(description) || `HTTP ${response.status}`,
      };
    },
  };
}
