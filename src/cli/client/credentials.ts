// Finds the caller's credential without being told: an explicit token first, then the workload
// identity of whichever platform the command runs on.
import { readFile } from 'node:fs/promises';
import { ClientError, EXIT } from './client-error.ts';
import type { ClientEnvironment } from './environment.ts';

export const DEFAULT_AUDIENCE = 'deploykey-rotator';

export interface Credential {
  token: string;
  /** Where it came from, named so a refused caller knows what to fix. */
  source: string;
}

export interface DiscoveryOptions {
  audience?: string;
  /** Kubernetes token files to try, in order. */
  k8sTokenFiles: string[];
  timeoutMs?: number;
}

async function readTokenFile(path: string): Promise<string | undefined> {
  try {
    const text = (await readFile(path, 'utf8')).trim();
    return text || undefined;
  } catch {
    return undefined;
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * GitHub's documented request (what @actions/core getIDToken sends): GET the request URL with
 * `&audience=<encodeURIComponent(audience)>` appended (it already carries `?api-version=…`), the request
 * token as bearer, answered by `{ "value": "<jwt>" }`.
 */
export async function fetchGithubIdToken(
  requestUrl: string,
  requestToken: string,
  audience: string,
  timeoutMs = 10_000,
): Promise<string> {
  if (!URL.canParse(requestUrl)) {
    throw new ClientError('ACTIONS_ID_TOKEN_REQUEST_URL is not a URL', EXIT.refused);
  }
  const url = `${requestUrl}${requestUrl.includes('?') ? '&' : '?'}audience=${encodeURIComponent(audience)}`;
  let lastFailure = '';
  for (let attempt = 1; attempt <= 3; attempt++) {
    let response: Response;
    try {
      response = await fetch(url, {
        headers: { authorization: `Bearer ${requestToken}`, accept: 'application/json' },
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      lastFailure = (error as Error).message;
      await pause(attempt * 500);
      continue;
    }
    if (response.ok) {
      const body = (await response.json().catch(() => undefined)) as { value?: unknown } | undefined;
      if (typeof body?.value === 'string' && body.value) return body.value;
      throw new ClientError('the GitHub Actions OIDC token response has no "value"', EXIT.failed);
    }
    await response.body?.cancel();
    lastFailure = `HTTP ${response.status}`;
    if (response.status < 500) {
      throw new ClientError(
        `GitHub Actions refused the OIDC token request (${lastFailure}); does the job have "permissions: id-token: write"?`,
        EXIT.refused,
      );
    }
    await pause(attempt * 500);
  }
  throw new ClientError(`could not get a GitHub Actions OIDC token: ${lastFailure}`, EXIT.failed);
}

/**
 * The first credential present, in this order: DEPLOYKEY_TOKEN, a GitHub Actions OIDC token, a
 * GitLab CI id token, a Kubernetes projected service account token file.
 */
export async function discoverCredential(
  env: ClientEnvironment,
  options: DiscoveryOptions,
): Promise<Credential> {
  if (env.token) return { token: env.token, source: 'DEPLOYKEY_TOKEN' };
  const { requestUrl, requestToken } = env.github;
  if (requestUrl && requestToken) {
    const audience = options.audience ?? DEFAULT_AUDIENCE;
    return {
      token: await fetchGithubIdToken(requestUrl, requestToken, audience, options.timeoutMs),
      source: 'GitHub Actions OIDC (ACTIONS_ID_TOKEN_REQUEST_URL)',
    };
  }
  if (env.gitlab.idToken)
    return { token: env.gitlab.idToken, source: `GitLab CI id token ${env.gitlab.tokenVar}` };
  for (const path of options.k8sTokenFiles) {
    const token = await readTokenFile(path);
    if (token) return { token, source: `Kubernetes token file ${path}` };
  }
  throw new ClientError(
    `no credential found; looked for DEPLOYKEY_TOKEN, ACTIONS_ID_TOKEN_REQUEST_URL + ACTIONS_ID_TOKEN_REQUEST_TOKEN ` +
      `(GitHub Actions with "permissions: id-token: write"), ${env.gitlab.tokenVar} (GitLab CI id_tokens) ` +
      `and the token file${options.k8sTokenFiles.length === 1 ? '' : 's'} ${options.k8sTokenFiles.join(', ')} (Kubernetes)`,
    EXIT.refused,
  );
}
