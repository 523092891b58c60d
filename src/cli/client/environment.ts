// The client side: what `deploykey issue|complete|revoke|list` read from the environment of a CI job,
// a pod or an operator's shell. Kept apart from the service's src/config.ts on purpose: these
// commands talk to the service over HTTP and need no database, Redis or Vault settings.

export const DEFAULT_GITLAB_TOKEN_VAR = 'DEPLOYKEY_ID_TOKEN';
export const DEFAULT_K8S_TOKEN_FILES = [
  '/var/run/secrets/tokens/deploykey',
  '/var/run/secrets/kubernetes.io/serviceaccount/token',
];

// Each value is undefined when its variable is unset or blank.
export interface ClientEnvironment {
  /** DEPLOYKEY_URL */
  serviceUrl?: string | undefined;
  /** DEPLOYKEY_TOKEN: an API token or a JWT. */
  token?: string | undefined;
  github: {
    requestUrl?: string | undefined;
    requestToken?: string | undefined;
    runId?: string | undefined;
    runAttempt?: string | undefined;
  };
  /** The id token in the variable named by `--gitlab-token-var`, and which variable that was. */
  gitlab: { tokenVar: string; idToken?: string | undefined; jobId?: string | undefined };
  /** KUBERNETES_SERVICE_HOST is set in every pod, so only then is HOSTNAME the pod's name. */
  kubernetes: { inPod: boolean; hostname?: string | undefined };
}

type Env = Record<string, string | undefined>;

const value = (env: Env, name: string) => {
  const text = env[name]?.trim();
  return text ? text : undefined;
};

export function readClientEnvironment(
  options: { gitlabTokenVar?: string } = {},
  env: Env = process.env,
): ClientEnvironment {
  const tokenVar = options.gitlabTokenVar ?? DEFAULT_GITLAB_TOKEN_VAR;
  return {
    serviceUrl: value(env, 'DEPLOYKEY_URL'),
    token: value(env, 'DEPLOYKEY_TOKEN'),
    github: {
      requestUrl: value(env, 'ACTIONS_ID_TOKEN_REQUEST_URL'),
      requestToken: value(env, 'ACTIONS_ID_TOKEN_REQUEST_TOKEN'),
      runId: value(env, 'GITHUB_RUN_ID'),
      runAttempt: value(env, 'GITHUB_RUN_ATTEMPT'),
    },
    gitlab: { tokenVar, idToken: value(env, tokenVar), jobId: value(env, 'CI_JOB_ID') },
    kubernetes: {
      inPod: value(env, 'KUBERNETES_SERVICE_HOST') !== undefined,
      hostname: value(env, 'HOSTNAME'),
    },
  };
}

/**
 * The job a key is for when `--job` is not given: a GitHub Actions run attempt, a GitLab CI job,
 * or the pod. A re-run attempt of a workflow is a new job and gets a new key.
 */
export function jobIdFromEnvironment(env: ClientEnvironment): string | undefined {
  if (env.github.runId) return `${env.github.runId}-${env.github.runAttempt ?? '1'}`;
  if (env.gitlab.jobId) return env.gitlab.jobId;
  if (env.kubernetes.inPod && env.kubernetes.hostname) return env.kubernetes.hostname;
  return undefined;
}

export const JOB_ID_SOURCES = 'GITHUB_RUN_ID, CI_JOB_ID or a Kubernetes pod HOSTNAME';
