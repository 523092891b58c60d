// Chaos controls of the Vault stand-in's authentication, in process and under `/_sandbox/auth/`:
// revoke tokens behind a client's back, refuse renewals, or take every login endpoint down, so
// tests can check that a client logs in again and waits out an outage of Vault auth.
import type { FastifyInstance } from 'fastify';
import type { TokenStore } from './tokens.ts';

export type LoginOutage = 'unavailable' | 'drop';

export interface AuthControls {
  /** Revokes one token, or every token issued on a path under `pathPrefix` (`auth/approle/`); returns how many. */
  revoke(target: { token?: string; pathPrefix?: string }): number;
  /** Answers every `auth/token/renew(-self)` with this failure until called with `undefined`. */
  refuseRenewals(answer: { status?: number; errors?: string[] } | undefined): void;
  /** `unavailable`: logins answer 503; `drop`: their connection is closed unanswered; `undefined`: back up. */
  takeLoginDown(mode: LoginOutage | undefined): void;
  /** Every token a login or renewal answered with, oldest first (for leak scans). */
  loginTokens(): string[];
  /** How many logins and token renewals Vault granted (answered 200) so far. */
  granted(): { logins: number; renewals: number };
}

const LOGIN = /^\/v1\/auth\/[^?]+\/login(\?|$)/;
const RENEW = /^\/v1\/auth\/token\/renew(-self)?(\?|$)/;
// What Vault answers when no active node can serve the request.
const UNAVAILABLE = ['local node not active but active cluster node not found'];

export function registerAuthControls(app: FastifyInstance, tokens: TokenStore): AuthControls {
  let renewalFailure: { status: number; errors: string[] } | undefined;
  let loginOutage: LoginOutage | undefined;
  const loginTokens = new Set<string>();
  const granted = { logins: 0, renewals: 0 };

  app.addHook('onRequest', async (request, reply) => {
    if (loginOutage && LOGIN.test(request.url)) {
      if (loginOutage === 'unavailable') return reply.code(503).send({ errors: UNAVAILABLE });
      request.raw.socket.destroy();
      return reply.hijack();
    }
    if (renewalFailure && RENEW.test(request.url)) {
      return reply.code(renewalFailure.status).send({ errors: renewalFailure.errors });
    }
  });

  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode !== 200 || typeof payload !== 'string') return payload;
    const login = LOGIN.test(request.url);
    if (!login && !RENEW.test(request.url)) return payload;
    granted[login ? 'logins' : 'renewals'] += 1;
    const token = (JSON.parse(payload) as { auth?: { client_token?: unknown } }).auth?.client_token;
    if (typeof token === 'string') loginTokens.add(token);
    return payload;
  });

  const controls: AuthControls = {
    loginTokens: () => [...loginTokens],
    granted: () => ({ ...granted }),
    revoke({ token, pathPrefix }) {
      const doomed = tokens
        .all()
        .filter(
          (entry) => entry.id === token || (pathPrefix !== undefined && entry.path.startsWith(pathPrefix)),
        );
      for (const entry of doomed) tokens.revoke(entry.id);
      return doomed.length;
    },
    refuseRenewals(answer) {
      renewalFailure = answer && {
        status: answer.status ?? 400,
        errors: answer.errors ?? ['lease is not renewable'],
      };
    },
    takeLoginDown(mode) {
      loginOutage = mode;
    },
  };

  app.post<{ Body: { token?: string; pathPrefix?: string } }>(
    '/_sandbox/auth/revoke',
    async (request, reply) => {
      const revoked = controls.revoke(request.body ?? {});
      return reply.code(revoked > 0 ? 200 : 404).send({ revoked });
    },
  );
  app.put<{ Body: { refuse: boolean; status?: number; errors?: string[] } }>(
    '/_sandbox/auth/renewals',
    async (request, reply) => {
      const { refuse, ...answer } = request.body ?? { refuse: false };
      controls.refuseRenewals(refuse ? answer : undefined);
      return reply.code(204).send();
    },
  );
  app.put<{ Body: { down: boolean; mode?: LoginOutage } }>('/_sandbox/auth/login', async (request, reply) => {
    const { down, mode } = request.body ?? { down: false };
    controls.takeLoginDown(down ? (mode ?? 'unavailable') : undefined);
    return reply.code(204).send();
  });
  return controls;
}
