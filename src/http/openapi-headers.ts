// Response headers the app adds in one place (app.ts, the rate limit), declared in the spec in one place.
type Json = Record<string, unknown>;

const REQUEST_ID_HEADER = {
  description:
    'The id of this request: the `X-Request-Id` the client sent (1–64 of `A-Za-z0-9._-`) or a new one',
  schema: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' },
};
const RATE_LIMIT_HEADERS = {
  'x-ratelimit-limit': {
    description: "Requests this caller may make in the route's window",
    schema: { type: 'integer', minimum: 1 },
  },
  'x-ratelimit-remaining': {
    description: 'Requests left in the current window',
    schema: { type: 'integer', minimum: 0 },
  },
  'x-ratelimit-reset': {
    description: 'Seconds until the window starts over',
    schema: { type: 'integer', minimum: 0 },
  },
};

/**
 * Headers the app adds to answers in one place (app.ts, the rate limit), declared in one place: every
 * answer carries `x-request-id`, and the 2xx answers of an operation with a request budget (one that
 * documents 429) carry the `x-ratelimit-*` headers.
 */
export function withCommonHeaders(responses: Json): Json {
  const budgeted = '429' in responses;
  return Object.fromEntries(
    Object.entries(responses).map(([status, response]) => {
      const own = ((response as Json).headers as Json | undefined) ?? {};
      const extra = budgeted && status.startsWith('2') ? RATE_LIMIT_HEADERS : {};
      const merged: Json = { ...own, ...extra, 'x-request-id': REQUEST_ID_HEADER };
      const headers = Object.fromEntries(
        Object.keys(merged)
          .sort()
          .map((name) => [name, merged[name]]),
      );
      const { description, content, ...rest } = response as Json;
      return [status, { description, ...rest, headers, ...(content ? { content } : {}) }];
    }),
  );
}
