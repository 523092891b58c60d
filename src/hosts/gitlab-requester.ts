// The HTTP layer under @gitbeaker/rest. Its default handler retries 429 and 502 ten times within
// about 256 ms and ignores `Retry-After` (gitbeaker issue #3805), then throws an error without the
// status or headers; this one honours `Retry-After` within our bound, retries 5xx and connection
// failures with a short backoff, and fails with the same GitbeakerRequestError gitbeaker throws.
import {
  createRequesterFn,
  type FormattedResponse,
  type RequestOptions,
  type ResponseBodyTypes,
} from '@gitbeaker/requester-utils';
import { GitbeakerRequestError } from '@gitbeaker/rest';
import type { Logger } from '../log.ts';
import { rateLimitWaitSeconds } from './error-mapping.ts';
import { backoffMs, isTimeoutError, type RetryPolicy, sleep, withinRetryBound } from './host-http.ts';

export interface GitlabRequesterOptions {
  fetch: typeof fetch;
  policy: RetryPolicy;
  logger: Logger;
}

async function parseBody(response: Response): Promise<ResponseBodyTypes> {
  if (response.status === 204) return null;
  const type = (response.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '';
  if (type === 'application/json') return ((await response.json()) as ResponseBodyTypes) || {};
  return response.text();
}

async function failedRequestError(request: Request, response: Response): Promise<GitbeakerRequestError> {
  const content = await response.text();
  let description = content;
  if (response.headers.get('content-type')?.includes('application/json')) {
    try {
      const output = JSON.parse(content) as { error?: unknown; message?: unknown } | null;
      const detail = output?.error ?? output?.message ?? '';
      description = typeof detail === 'string' ? detail : JSON.stringify(detail);
    } catch {
      description = content;
    }
  }
  return new GitbeakerRequestError(description, { cause: { description, request, response } });
}

export function gitlabRequesterFn(opts: GitlabRequesterOptions) {
  const { policy, logger } = opts;

  const send = async (endpoint: string, options: RequestOptions): Promise<FormattedResponse> => {
    const prefix = options.prefixUrl ?? '';
    const url = new URL(endpoint, prefix.endsWith('/') ? prefix : `${prefix}/`);
    url.search = options.searchParams ?? '';
    const init: RequestInit = { method: options.method ?? 'GET', headers: options.headers ?? {} };
    if (options.body !== undefined) init.body = options.body;

    for (let retryCount = 0; ; retryCount += 1) {
      const request = new Request(url, init);
      let response: Response;
      try {
        response = await opts.fetch(request);
      } catch (error) {
        if (isTimeoutError(error) || retryCount >= policy.maxRetries) throw error;
        await sleep(backoffMs(policy, retryCount));
        continue;
      }
      if (response.ok) {
        const body = await parseBody(response);
        return { body, headers: Object.fromEntries(response.headers.entries()), status: response.status };
      }

      let waitMs: number | undefined;
      if (response.status === 429) {
        const retryAfter = rateLimitWaitSeconds(Object.fromEntries(response.headers.entries()));
        const retrying = withinRetryBound(policy, retryCount, retryAfter);
        logger.warn(
          { retryAfter, retryCount, method: init.method, url: url.pathname, retrying },
          retrying ? 'GitLab rate limit, waiting before retrying' : 'GitLab rate limit beyond our wait bound',
        );
        if (retrying) waitMs = retryAfter * 1000;
      } else if (response.status >= 500 && retryCount < policy.maxRetries) {
        waitMs = backoffMs(policy, retryCount);
      }
      if (waitMs === undefined) throw await failedRequestError(request, response);
      await response.body?.cancel();
      await sleep(waitMs);
    }
  };

  return createRequesterFn(
    async (_service, requestOptions) => requestOptions,
    (endpoint, options) => send(endpoint, (options ?? {}) as RequestOptions),
  );
}
