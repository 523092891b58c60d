// The HTTP layer under @gitbeaker/rest: one attempt per request. gitbeaker's default handler
// retries 429 and 502 ten times within about 256 ms, ignoring `Retry-After` (gitbeaker issue
// #3805), and then throws without the status or headers; retries are the adapter core's, so this
// only sends, and fails with the same GitbeakerRequestError gitbeaker throws, the answer attached.
import {
  createRequesterFn,
  type FormattedResponse,
  type RequestOptions,
  type ResponseBodyTypes,
} from '@gitbeaker/requester-utils';
import { GitbeakerRequestError } from '@gitbeaker/rest';

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
      const output = JSON.parse(content) as {
        error?: unknown;
        error_description?: unknown;
        message?: unknown;
      } | null;
      const detail = output?.error ?? output?.message ?? '';
      description = typeof detail === 'string' ? detail : JSON.stringify(detail);
      // An OAuth refusal (401 invalid_token) says why in `error_description`: expired or revoked.
      if (typeof output?.error_description === 'string') description += `: ${output.error_description}`;
    } catch {
      description = content;
    }
  }
  return new GitbeakerRequestError(description, { cause: { description, request, response } });
}

export function gitlabRequesterFn(send: typeof fetch) {
  const request = async (endpoint: string, options: RequestOptions): Promise<FormattedResponse> => {
    const prefix = options.prefixUrl ?? '';
    const url = new URL(endpoint, prefix.endsWith('/') ? prefix : `${prefix}/`);
    url.search = options.searchParams ?? '';
    const init: RequestInit = { method: options.method ?? 'GET', headers: options.headers ?? {} };
    if (options.body !== undefined) init.body = options.body;
    const response = await send(url, init);
    if (!response.ok) throw await failedRequestError(new Request(url, init), response);
    const body = await parseBody(response);
    return { body, headers: Object.fromEntries(response.headers.entries()), status: response.status };
  };

  return createRequesterFn(
    async (_service, requestOptions) => requestOptions,
    (endpoint, options) => request(endpoint, (options ?? {}) as RequestOptions),
  );
}
