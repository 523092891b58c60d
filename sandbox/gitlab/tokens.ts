// Personal access tokens of the GitLab stand-in: each accepted token has a name, scopes and an
// expiry date and can be revoked; `GET /personal_access_tokens/self` describes the caller's own
// token, and an expired or revoked one is refused as GitLab's API guard refuses it.
import type { FastifyInstance, FastifyRequest } from 'fastify';

export interface SandboxAccessToken {
  id: number;
  token: string;
  name: string;
  description: string;
  scopes: string[];
  userId: number;
  createdAt: Date;
  /** `YYYY-MM-DD`, as GitLab stores it; the token stops working at the start of that day (UTC). */
  expiresAt: string | null;
  revoked: boolean;
  lastUsedAt: Date | null;
}

export type TokenStatus = 'active' | 'expired' | 'revoked';

export interface TokenRegistry {
  /** Is this an accepted token that is neither expired nor revoked? */
  has(token: string): boolean;
  status(token: string): TokenStatus | undefined;
  find(token: string): SandboxAccessToken | undefined;
  /** `null` for a token that never expires (GitLab before 16.0). */
  setExpiry(token: string, expiresAt: string | null): void;
  revoke(token: string): void;
}

const DAY_MS = 86_400_000;
const dateOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
// GitLab 16 gives a token without an expiry date one a year ahead.
const DEFAULT_LIFETIME_DAYS = 365;
const ADMIN_USER_ID = 1;

export function createTokenRegistry(tokens: string[], now: () => number = Date.now): TokenRegistry {
  const entries = new Map<string, SandboxAccessToken>();
  tokens.forEach((token, index) => {
    entries.set(token, {
      id: index + 1,
      token,
      name: `sandbox-token-${index + 1}`,
      description: '',
      scopes: ['api'],
      userId: ADMIN_USER_ID,
      createdAt: new Date(now()),
      expiresAt: dateOf(now() + DEFAULT_LIFETIME_DAYS * DAY_MS),
      revoked: false,
      lastUsedAt: null,
    });
  });
  const known = (token: string) => {
    const entry = entries.get(token);
    if (!entry) throw new Error('no such GitLab token');
    return entry;
  };
  const status = (token: string): TokenStatus | undefined => {
    const entry = entries.get(token);
    if (!entry) return undefined;
    if (entry.revoked) return 'revoked';
    // `expires_at <= Time.current`, the date read as midnight UTC.
    if (entry.expiresAt !== null && Date.parse(`${entry.expiresAt}T00:00:00Z`) <= now()) return 'expired';
    return 'active';
  };
  return {
    has: (token) => status(token) === 'active',
    status,
    find: (token) => entries.get(token),
    setExpiry(token, expiresAt) {
      known(token).expiresAt = expiresAt;
    },
    revoke(token) {
      known(token).revoked = true;
    },
  };
}

// rack-oauth2's Bearer error, as API::APIGuard answers ExpiredError and RevokedError.
const REFUSALS: Record<Exclude<TokenStatus, 'active'>, string> = {
  expired: 'Token is expired. You can either do re-authorization or token refresh.',
  revoked: 'Token was revoked. You have to re-authorize from the user.',
};

export function registerTokenRoutes(
  app: FastifyInstance,
  registry: TokenRegistry,
  tokenOf: (request: FastifyRequest) => string | undefined,
): void {
  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/api/v4/')) return;
    const token = tokenOf(request);
    const status = token === undefined ? undefined : registry.status(token);
    if (status === 'active') {
      registry.find(token!)!.lastUsedAt = new Date();
      return;
    }
    if (status === undefined) return;
    const description = REFUSALS[status];
    return reply
      .code(401)
      .header(
        'www-authenticate',
        `Bearer realm="The API", error="invalid_token", error_description="${description}"`,
      )
      .send({ error: 'invalid_token', error_description: description });
  });

  app.get('/api/v4/personal_access_tokens/self', async (request, reply) => {
    const token = tokenOf(request);
    const entry = token === undefined ? undefined : registry.find(token);
    if (!entry) return reply.code(401).send({ message: '401 Unauthorized' });
    return {
      id: entry.id,
      name: entry.name,
      revoked: entry.revoked,
      created_at: entry.createdAt.toISOString(),
      description: entry.description,
      scopes: entry.scopes,
      user_id: entry.userId,
      last_used_at: entry.lastUsedAt?.toISOString() ?? null,
      active: registry.status(entry.token) === 'active',
      expires_at: entry.expiresAt,
    };
  });

  app.patch<{ Body: { token: string; expiresAt?: string | null; revoked?: boolean } }>(
    '/_sandbox/tokens',
    async (request, reply) => {
      const { token, expiresAt, revoked } = request.body ?? ({} as { token: string });
      if (!registry.find(token)) return reply.code(404).send({ message: 'no such token' });
      if (expiresAt !== undefined) registry.setExpiry(token, expiresAt);
      if (revoked) registry.revoke(token);
      return reply.code(204).send();
    },
  );
}
