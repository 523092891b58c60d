// GitHub (github.com or GitHub Enterprise Server) through Octokit: one request per call; the
// adapter core (host-adapter.ts) retries, paces and maps errors.
import { Octokit } from '@octokit/rest';
import { githubJobStatus } from './ci-job-status.ts';
import { describeBody, type FailedAnswer } from './error-mapping.ts';
import type { CiJobQuery, CiJobStatus } from './git-host.ts';
import { createGithubCredentials } from './github-credentials.ts';
import { fromReadOnlyFlagKey } from './host-http.ts';
import type { HostPace, HostTransport, TransportContext } from './host-transport.ts';

// GitHub asks integrations to send content-creating requests serially, at least a second apart,
// and documents a secondary limit of 80 of them a minute; a GitHub Enterprise Server may allow more.
const GITHUB_WRITES: HostPace = { concurrency: 1, minIntervalMs: 1_000, requestsPerMinute: 80 };

const PER_PAGE = 100;

interface OctokitFailure {
  response?: { status: number; headers: Record<string, string | undefined>; data: unknown };
}

/** The page number of the `rel="next"` link, as GitHub paginates: `<…?page=2&per_page=100>; rel="next"`. */
export function nextPageOf(link: string | undefined): number | undefined {
  const next = link?.split(',').find((part) => /rel="next"/.test(part));
  const url = next ? /<([^>]+)>/.exec(next)?.[1] : undefined;
  const page = url ? Number(new URL(url).searchParams.get('page')) : Number.NaN;
  return Number.isInteger(page) && page > 0 ? page : undefined;
}

const ownerAndRepo = (repository: string) => {
  const [owner = '', repo = ''] = repository.split('/');
  return { owner, repo };
};

/** Whether a run attempt or job has completed, and whether the repository is there at all. */
function githubCiReads(octokit: Octokit): Pick<HostTransport, 'ciJobStatus' | 'readRepository'> {
  return {
    async ciJobStatus(query: CiJobQuery): Promise<CiJobStatus> {
      const { owner, repo } = ownerAndRepo(query.repository);
      if (query.kind === 'github-job') {
        const job_id = Number(query.checkRunId);
        return githubJobStatus(
          (await octokit.rest.actions.getJobForWorkflowRun({ owner, repo, job_id })).data,
        );
      }
      if (query.kind !== 'github-run-attempt') return { state: 'unknown' };
      const attempt = await octokit.rest.actions.getWorkflowRunAttempt({
        owner,
        repo,
        run_id: Number(query.runId),
        attempt_number: Number(query.runAttempt),
        exclude_pull_requests: true,
      });
      return githubJobStatus(attempt.data);
    },
    async readRepository(repository: string) {
      await octokit.rest.repos.get(ownerAndRepo(repository));
    },
  };
}

/** Octokit for one host, every request carrying the credential its repository's owner needs. */
function credentialedOctokit({ config, logger, fetch, clock }: TransportContext) {
  const octokit = new Octokit({
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
    request: { fetch },
  });

  const credentials = createGithubCredentials({ config, request: octokit.request, clock, logger });
  // The one place credentials reach a request; a header set already (auth-app's JWT) is kept.
  octokit.hook.before('request', async (options) => {
    if (options.headers.authorization) return;
    const { owner, repo } = options as { owner?: unknown; repo?: unknown };
    const authorization =
      typeof owner === 'string' && typeof repo === 'string'
        ? await credentials.forRepository(owner, repo)
        : credentials.forHost();
    if (authorization) options.headers.authorization = authorization;
  });
  octokit.hook.error('request', (error, options) => {
    const { owner } = options as { owner?: unknown };
    if ((error as { status?: number }).status === 401 && typeof owner === 'string')
      credentials.rejected(owner);
    throw error;
  });
  return { octokit, credentials };
}

export function createGithubTransport(context: TransportContext): HostTransport {
  const { octokit, credentials } = credentialedOctokit(context);

  return {
    repositoryShape: 'a GitHub repository (owner/name)',
    maxPathSegments: 2,
    writePace: GITHUB_WRITES,
    alreadyRegistered: /already in use/i,

    async checkAccess(repository) {
      const { owner, repo } = ownerAndRepo(repository);
      await credentials.checkAccess(owner, repo);
    },

    async addKey(repository, key) {
      const response = await octokit.rest.repos.createDeployKey({
        ...ownerAndRepo(repository),
        title: key.title,
        key: key.publicKey,
        // Invariant: read-only always. GitHub makes a key read-write when `read_only` is omitted.
        read_only: true,
      });
      return fromReadOnlyFlagKey(response.data);
    },

    async deleteKey(repository, hostKeyId) {
      await octokit.rest.repos.deleteDeployKey({ ...ownerAndRepo(repository), key_id: Number(hostKeyId) });
    },

    async listPage(repository, page) {
      const response = await octokit.rest.repos.listDeployKeys({
        ...ownerAndRepo(repository),
        per_page: PER_PAGE,
        page,
      });
      return { keys: response.data.map(fromReadOnlyFlagKey), nextPage: nextPageOf(response.headers.link) };
    },

    ...githubCiReads(octokit),

    fetchMeta: async () => (await octokit.rest.meta.get()).data,

    answerOf(error): FailedAnswer | undefined {
      const response = (error as OctokitFailure | null)?.response;
      if (!response) return undefined;
      return {
        status: response.status,
        headers: response.headers,
        message: describeBody(response.data) || `HTTP ${response.status}`,
      };
    },
  };
}
