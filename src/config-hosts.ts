// One host entry of the config file (`hosts[]`): where the host is, how the service authenticates
// to it, how long it waits for it, and its write budget. Part of the config file schema in src/config.ts.
import Type from 'typebox';
import { HostAuthSchema, HostCredentialsSchema } from './hosts/host-auth-config.ts';
import { HostIdSchema } from './model/schemas.ts';

export const Url = (schemes: string[], description: string) =>
  Type.String({ pattern: `^(${schemes.join('|')})://[^\\s]+$`, description });

export const HostSchema = Type.Object(
  {
    id: Type.With(HostIdSchema, { description: 'Name callers use as `provider`' }),
    type: Type.Union([Type.Literal('github'), Type.Literal('gitlab'), Type.Literal('gitea')]),
    apiUrl: Url(
      ['http', 'https'],
      'REST API base, e.g. https://api.github.com, https://gitlab.com/api/v4 or https://gitea.example.com/api/v1',
    ),
    sshUrl: Url(['ssh'], 'SSH clone base, e.g. ssh://git@github.com'),
    knownHosts: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    tokenEnv: Type.Optional(Type.String({ pattern: '^[A-Z_][A-Z0-9_]*$' })),
    auth: Type.Optional(HostAuthSchema),
    credentials: Type.Optional(HostCredentialsSchema),
    requestTimeoutSeconds: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 300,
        description:
          'Longest one request to the host may go unanswered before it counts as failed (default 10)',
      }),
    ),
    maxRetryAfterSeconds: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 3_600,
        description:
          'Longest pause a rate limit (Retry-After) may ask that a call waits out itself (default 10); ' +
          'beyond it the call fails at once and a revoke waits in its queue',
      }),
    ),
    writes: Type.Optional(
      Type.Object(
        {
          concurrency: Type.Optional(
            Type.Integer({ minimum: 1, maximum: 64, description: 'Write requests in flight at once' }),
          ),
          minIntervalMs: Type.Optional(
            Type.Integer({ minimum: 0, description: 'Least time between starting two writes' }),
          ),
          requestsPerMinute: Type.Optional(
            Type.Integer({ minimum: 1, description: 'Most writes started in any one minute' }),
          ),
          maxQueueSeconds: Type.Optional(
            Type.Integer({
              minimum: 0,
              maximum: 600,
              description: 'Longest a write waits for its turn before the request gets 503 with Retry-After',
            }),
          ),
        },
        {
          additionalProperties: false,
          description: 'Budget for adding and deleting deploy keys on this host; defaults depend on the type',
        },
      ),
    ),
  },
  { additionalProperties: false },
);
