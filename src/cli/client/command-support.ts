// What the client commands share: their common flags, argument parsing that answers with the
// command's own usage, and reaching the service with a discovered credential.
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { UsageError } from '../usage-error.ts';
import { discoverCredential } from './credentials.ts';
import {
  type ClientEnvironment,
  DEFAULT_GITLAB_TOKEN_VAR,
  DEFAULT_K8S_TOKEN_FILES,
  readClientEnvironment,
} from './environment.ts';
import { createServiceClient, type KeyView, type ServiceClient } from './service-client.ts';

export const CONNECTION_OPTIONS = {
  url: { type: 'string' },
  'gitlab-token-var': { type: 'string' },
  'k8s-token-file': { type: 'string' },
  audience: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

export const CONNECTION_HELP = `service and credential:
  --url URL                 the service (default: $DEPLOYKEY_URL)
  --gitlab-token-var NAME   variable holding the GitLab CI id token (default: ${DEFAULT_GITLAB_TOKEN_VAR})
  --k8s-token-file PATH     Kubernetes projected service account token
                            (default: ${DEFAULT_K8S_TOKEN_FILES.join(', then ')})
  --audience AUD            audience asked of GitHub Actions OIDC (default: deploykey-rotator)
  The credential is the first found of: DEPLOYKEY_TOKEN (API token or JWT), GitHub Actions OIDC
  (ACTIONS_ID_TOKEN_REQUEST_URL + ACTIONS_ID_TOKEN_REQUEST_TOKEN), the GitLab CI id token, the
  Kubernetes token file.

exit codes: 0 ok, 1 service or network error, 2 usage (a bad flag, or a request the service refused
  as invalid, such as an unknown provider), 3 authentication or authorization refused, 4 not found`;

type ConnectionValues = {
  url?: string | undefined;
  'gitlab-token-var'?: string | undefined;
  'k8s-token-file'?: string | undefined;
  audience?: string | undefined;
};

/** parseArgs, strict, with node's message cut to its first sentence and this command's usage. */
export function parseCommandArgs<T extends ParseArgsConfig>(config: T, usage: string) {
  try {
    return parseArgs({ ...config, strict: true });
  } catch (error) {
    const { code, message } = error as Error & { code?: string };
    if (!code?.startsWith('ERR_PARSE_ARGS')) throw error;
    throw new UsageError((message.split(/\.\s/)[0] ?? message).replace(/\.$/, ''), usage);
  }
}

export function clientEnvironment(values: ConnectionValues): ClientEnvironment {
  return readClientEnvironment(
    values['gitlab-token-var'] ? { gitlabTokenVar: values['gitlab-token-var'] } : {},
  );
}

export async function connect(
  values: ConnectionValues,
  env: ClientEnvironment,
  usage: string,
): Promise<ServiceClient> {
  const baseUrl = values.url ?? env.serviceUrl;
  if (!baseUrl) throw new UsageError('no service URL: pass --url or set DEPLOYKEY_URL', usage);
  if (!/^https?:\/\/[^\s/]+/.test(baseUrl)) {
    throw new UsageError(`the service URL must be http(s)://…, not "${baseUrl}"`, usage);
  }
  const credential = await discoverCredential(env, {
    k8sTokenFiles: values['k8s-token-file'] ? [values['k8s-token-file']] : DEFAULT_K8S_TOKEN_FILES,
    ...(values.audience ? { audience: values.audience } : {}),
  });
  return createServiceClient({ baseUrl, credential });
}

/** One key per line, tab-separated, for people and `cut`. */
export function formatKeyLine(key: KeyView): string {
  return [key.id, key.status, key.provider, key.repository, key.jobId, `expires ${key.expiresAt}`].join('\t');
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}
