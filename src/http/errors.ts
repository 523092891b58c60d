import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type Denial, DomainError } from '../errors.ts';
import { httpAnswerOf } from './error-statuses.ts';

export type { Denial };

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
const PROBLEM_TYPE_BASE = 'https://deploykey-rotator.dev/problems/';

/** An error the HTTP layer itself raises (a request budget, a query parameter) with its own status. */
export class AppError extends DomainError {
  readonly status: number;
  /** Whether `message` may be shown to the caller. 5xx messages are never shown unless marked. */
  readonly expose: boolean;
  readonly headers: Record<string, string>;

  constructor(
    code: string,
    status: number,
    message: string,
    options: {
      expose?: boolean;
      headers?: Record<string, string>;
      extra?: Record<string, unknown>;
      cause?: unknown;
      denial?: Denial;
    } = {},
  ) {
    super(code, message, {
      detail: message,
      extra: options.extra,
      denial: options.denial,
      cause: options.cause,
    });
    this.name = 'AppError';
    this.status = status;
    this.expose = options.expose ?? status < 500;
    this.headers = options.headers ?? {};
  }
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  code: string;
  [extension: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export function problem(
  status: number,
  code: string,
  detail?: string,
  extra: Record<string, unknown> = {},
): Problem {
  return {
    type: `${PROBLEM_TYPE_BASE}${code}`,
    title: TITLES[status] ?? 'Error',
    status,
    code,
    ...(detail ? { detail } : {}),
    ...extra,
  };
}

function sendProblem(reply: FastifyReply, body: Problem, headers: Record<string, string> = {}) {
  return reply
    .code(body.status)
    .headers(headers)
    .header('content-type', PROBLEM_CONTENT_TYPE)
    .header('cache-control', 'no-store')
    .send({ ...body, instance: reply.request.url.split('?')[0] });
}

/** Regular expressions of the schemas, each with the rule it stands for in words. */
export type PatternRules = Record<string, string>;

function issueMessage(issue: NonNullable<FastifyError['validation']>[number], rules: PatternRules): string {
  const params = issue.params as { additionalProperty?: unknown; pattern?: unknown } | undefined;
  if (typeof params?.additionalProperty === 'string')
    return `has an unknown field "${params.additionalProperty}"`;
  // A raw regular expression tells a caller little about what to send instead.
  if (issue.keyword === 'pattern' && typeof params?.pattern === 'string' && rules[params.pattern]) {
    return rules[params.pattern]!;
  }
  return issue.message ?? 'is invalid';
}

function fromFrameworkError(error: FastifyError, rules: PatternRules): Problem | undefined {
  if (error.validation) {
    const where = error.validationContext ?? 'request';
    const errors = error.validation.map((issue) => ({
      location: where,
      pointer: issue.instancePath || '/',
      message: issueMessage(issue, rules),
    }));
    const first = errors[0];
    const detail = first
      ? `${where}${first.pointer === '/' ? '' : first.pointer} ${first.message}`
      : undefined;
    return problem(400, 'validation-failed', detail, { errors });
  }
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return problem(413, 'body-too-large', 'The request body is larger than this endpoint accepts.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return problem(415, 'unsupported-media-type', 'Send the body as application/json.');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return problem(400, 'invalid-json', 'The body is empty but Content-Type says JSON.');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return problem(400, 'invalid-content-length', 'Content-Length does not match the body.');
  }
  if (error instanceof SyntaxError || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return problem(400, 'invalid-json', 'The body is not valid JSON.');
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) return problem(status, 'bad-request', error.message);
  return undefined;
}

/**
 * For the errors fastify raises before routing (an undecodable URL such as `/v1/keys/%FF`), which
 * skip the error handler and hooks: without it they would answer fastify's own JSON shape.
 */
export function sendFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const body =
    error.code === 'FST_ERR_BAD_URL'
      ? problem(400, 'invalid-url', 'The request path is not a valid URL.')
      : problem(500, 'internal', 'The service failed to handle this request.');
  const status = body.status;
  return reply
    .code(status)
    .header('content-type', PROBLEM_CONTENT_TYPE)
    .header('cache-control', 'no-store')
    .header('x-request-id', request.id)
    .send(JSON.stringify(body));
}

/**
 * For requests node cannot even parse (headers over its 16 KiB limit, a malformed request line):
 * the same problem shape as every other error instead of fastify's own JSON, then the socket closes.
 */
export function sendClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, detail] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'headers-too-large', 'The request headers are larger than this service accepts.']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'request-timeout', 'The request was not received in time.']
        : [400, 'malformed-request', 'The request is not valid HTTP/1.1.'];
  const body = JSON.stringify(problem(status, code, detail));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${TITLES[status]}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
        `Cache-Control: no-store\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

interface Answer {
  status: number;
  code: string;
  detail: string | undefined;
  extra: Record<string, unknown>;
  headers: Record<string, string>;
}

function answerOf(error: DomainError): Answer {
  if (error instanceof AppError) {
    const detail = error.expose ? error.message : undefined;
    return { status: error.status, code: error.code, detail, extra: error.extra, headers: error.headers };
  }
  const known = httpAnswerOf(error);
  if (!known) {
    return { status: 500, code: 'internal', detail: undefined, extra: {}, headers: {} };
  }
  return {
    status: known.status,
    code: error.code,
    detail: known.showDetail ? error.detail : undefined,
    extra: error.extra,
    headers: known.headers,
  };
}

export interface ErrorHandlingOptions {
  /** Plain-words rules for schema patterns, shown instead of the regular expression. */
  patternRules?: PatternRules;
  /** Audits a refusal; a failure to do so is logged and the refusal still answered. */
  recordDenial?: (denial: Denial, request: FastifyRequest) => Promise<void>;
}

export function registerErrorHandling(
  app: Pick<FastifyInstance, 'setErrorHandler' | 'setNotFoundHandler'>,
  options: ErrorHandlingOptions = {},
): void {
  app.setErrorHandler(async (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof DomainError) {
      if (error.denial && options.recordDenial) {
        await options.recordDenial(error.denial, request).catch((failure: Error) => {
          request.log.error({ err: failure.message, code: error.code }, 'could not audit a refusal');
        });
      }
      const answer = answerOf(error);
      if (answer.status >= 500) request.log.error({ err: error, code: error.code }, 'request failed');
      const body = problem(answer.status, answer.code, answer.detail, answer.extra);
      return sendProblem(reply, body, answer.headers);
    }
    const framework = fromFrameworkError(error, options.patternRules ?? {});
    if (framework) return sendProblem(reply, framework);
    request.log.error({ err: error }, 'unhandled error');
    return sendProblem(reply, problem(500, 'internal', 'The service failed to handle this request.'));
  });

  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, problem(404, 'not-found', `No route ${request.method} ${request.url.split('?')[0]}.`)),
  );
}
