// Settings that bound what any one client can cost the API: HTTP timeouts and connection limits,
// and request budgets. Part of the config file schema in src/config.ts.
import Type from 'typebox';

const Seconds = (defaultValue: number, description: string) =>
  Type.Integer({ minimum: 1, default: defaultValue, description });

export const HttpLimitsSchema = Type.Object(
  {
    requestTimeoutSeconds: Seconds(
      30,
      'Longest a client may take to send a whole request, headers and body; then 408 and the connection closes',
    ),
    headersTimeoutSeconds: Seconds(
      10,
      'Longest a client may take to send the request headers (at most requestTimeoutSeconds)',
    ),
    keepAliveTimeoutSeconds: Seconds(
      72,
      'How long an idle keep-alive connection stays open between requests (above a load balancer idle timeout)',
    ),
    connectionTimeoutSeconds: Seconds(120, 'An inactive connection is closed after this long'),
    maxRequestsPerSocket: Type.Integer({
      minimum: 0,
      default: 1_000,
      description: 'Requests served on one connection before it is closed (0: no limit)',
    }),
    maxConnections: Type.Integer({
      minimum: 1,
      default: 1_024,
      description: 'Open connections at once; further connections are refused until some close',
    }),
  },
  { additionalProperties: false, default: {} },
);

export const RateLimitSchema = Type.Object(
  {
    max: Type.Integer({ minimum: 1, default: 120, description: 'Requests per caller per window' }),
    timeWindowSeconds: Type.Integer({ minimum: 1, default: 60 }),
    expensiveMax: Type.Integer({
      minimum: 1,
      default: 10,
      description: 'Requests per caller per window to each expensive route (audit verify and export)',
    }),
    failedAuthMax: Type.Integer({
      minimum: 1,
      default: 30,
      description:
        'Failed authentications per source address per window; past it every request from the address gets 429 until the window ends',
    }),
  },
  { additionalProperties: false, default: {} },
);
