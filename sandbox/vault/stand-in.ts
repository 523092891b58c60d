// Local stand-in for HashiCorp Vault's HTTP API (`/v1/`): KV v2, tokens and ACL policies,
// response wrapping, Kubernetes, AppRole and JWT auth and sys/health, with Vault's envelopes and
// error bodies.
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { type FaultInjector, registerFaults } from '../shared/faults.ts';
import { serveOn, type TlsIdentity } from '../shared/listeners.ts';
import { createAppRoleAuth } from './approle.ts';
import { type AuthControls, registerAuthControls } from './auth-controls.ts';
import {
  isObject,
  isVaultFailure,
  multiError,
  PERMISSION_DENIED,
  parseDurationSeconds,
  type VaultOperation,
  type VaultRequest,
  vaultFailure,
} from './http.ts';
import { createJwtAuth } from './jwt-auth.ts';
import { createKubernetesAuth } from './kubernetes.ts';
import { createKvEngine } from './kv.ts';
import { LIST_MARKER_HEADER, listRewritingStream } from './list-method.ts';
import { createPolicyStore } from './policies.ts';
import { createVaultRouter, type VaultReply } from './router.ts';
import { createSystemRoutes, healthAnswer, newVaultIdentity } from './system.ts';
import { createTokenStore } from './tokens.ts';
import { createWrapping } from './wrapping.ts';

export interface VaultStandInOptions {
  rootToken: string;
  /** Mount of the KV version 2 engine; default `secret`. */
  kvMount?: string;
  /** Keys for `auth/kubernetes/login`; can also be set later through `auth/kubernetes/config`. */
  kubernetes?: { publicKeysPem?: string[] };
  port?: number;
  /** Clock for token, wrapping-token and JWT lifetimes (ms since epoch); default `Date.now`. */
  now?: () => number;
  /** Also serve over HTTPS with this certificate. */
  tls?: TlsIdentity;
}

export interface VaultStandIn {
  addr: string;
  /** The HTTPS twin of `addr` when the stand-in was given a certificate. */
  httpsAddr?: string;
  faults: FaultInjector;
  /** Revoke tokens, refuse renewals, take logins down. */
  auth: AuthControls;
  close(): Promise<void>;
}

const FAULT_MESSAGES: Record<number, string[]> = {
  400: ['invalid request'],
  403: [PERMISSION_DENIED],
  404: [],
  405: [multiError('unsupported operation')],
  429: ['request path "": rate limit quota exceeded'],
  500: [multiError('internal error')],
  503: ['Vault is sealed'],
};

const BEARER = /^bearer\s+(\S+)\s*$/i;

export async function startVaultStandIn(opts: VaultStandInOptions): Promise<VaultStandIn> {
  const kvMount = (opts.kvMount ?? 'secret').replace(/^\/+|\/+$/g, '');
  const policies = createPolicyStore();
  const now = opts.now ?? Date.now;
  const tokens = createTokenStore(opts.rootToken, now);
  const identity = newVaultIdentity();
  const wrapping = createWrapping(tokens);
  const router = createVaultRouter({
    mounts: [
      { prefix: `${kvMount}/`, type: 'kv' },
      { prefix: 'sys/', type: 'system' },
      { prefix: 'auth/token/', type: 'token' },
      { prefix: 'auth/kubernetes/', type: 'kubernetes' },
      { prefix: 'auth/approle/', type: 'approle' },
      { prefix: 'auth/jwt/', type: 'jwt' },
      { prefix: 'cubbyhole/', type: 'cubbyhole' },
      { prefix: 'identity/', type: 'identity' },
    ],
    routes: [
      ...createSystemRoutes(identity, kvMount),
      ...createKvEngine(kvMount),
      ...policies.routes,
      ...tokens.routes,
      ...wrapping.routes,
      ...createKubernetesAuth(tokens, opts.kubernetes?.publicKeysPem, now),
      ...createAppRoleAuth(tokens, now),
      ...createJwtAuth(tokens, now),
    ],
    tokens,
    policies,
    wrapping,
  });

  const app = Fastify({ logger: false });
  // Before the fault hook, so a rule with `method: 'LIST'` sees the method the client sent.
  app.addHook('onRequest', async (request) => {
    if (request.headers[LIST_MARKER_HEADER] === 'LIST') request.raw.method = 'LIST';
  });
  const faults = registerFaults(app, (status) => ({ errors: FAULT_MESSAGES[status] ?? [] }));
  const auth = registerAuthControls(app, tokens);

  // Vault reads every request body as JSON, whatever the Content-Type.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, body === '' ? undefined : JSON.parse(body as string));
    } catch (error) {
      done(
        Object.assign(new Error(`failed to parse JSON input: ${(error as Error).message}`), {
          statusCode: 400,
        }),
      );
    }
  });
  app.setErrorHandler((error: Error & { statusCode?: number }, _request, reply) => {
    const status = error.statusCode ?? 500;
    reply.code(status).send({ errors: [status >= 500 ? multiError('internal error') : error.message] });
  });
  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ errors: [] }));
  // Vault writes `Content-Type: application/json`, without the charset Fastify would add.
  app.addHook('onSend', async (_request, reply, payload) => {
    if (String(reply.getHeader('content-type') ?? '').startsWith('application/json')) {
      reply.header('content-type', 'application/json');
    }
    return payload;
  });

  app.route({
    method: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'],
    url: '/v1/sys/health',
    handler: async (request, reply) => {
      // sys/health has its own HTTP handler in Vault: other methods get a bare 405.
      if (request.method !== 'GET' && request.method !== 'HEAD') return reply.code(405).send({ errors: [] });
      const answer = healthAnswer(request.query as Record<string, string | undefined>, identity);
      reply.code(answer.status).header('cache-control', 'no-store');
      // A HEAD answer is the status alone.
      return request.method === 'HEAD' ? reply.send() : reply.send(answer.body);
    },
  });

  app.route({
    method: ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'],
    url: '/v1/*',
    handler: async (request, reply) => {
      let answer: VaultReply;
      try {
        answer = await router.handle(toVaultRequest(request));
      } catch (error) {
        if (!isVaultFailure(error)) throw error;
        answer = { status: error.vaultStatus, body: { errors: error.vaultErrors } };
      }
      return send(reply, answer);
    },
  });

  const listeners = await serveOn(app, { port: opts.port, tls: opts.tls, connection: listRewritingStream });
  return {
    addr: listeners.url,
    ...(listeners.httpsUrl ? { httpsAddr: listeners.httpsUrl } : {}),
    faults,
    auth,
    close: () => listeners.close(),
  };
}

function send(reply: FastifyReply, answer: VaultReply) {
  reply.code(answer.status).header('cache-control', 'no-store');
  return answer.body === undefined ? reply.send() : reply.send(answer.body);
}

function toVaultRequest(request: FastifyRequest): VaultRequest {
  const url = new URL(request.url, 'http://vault.invalid');
  let path: string;
  try {
    path = url.pathname.slice('/v1/'.length).split('/').map(decodeURIComponent).join('/');
  } catch {
    throw vaultFailure(400, 'invalid URL escape');
  }
  const query: Record<string, unknown> = Object.fromEntries(url.searchParams);
  let operation: VaultOperation;
  let data: Record<string, unknown> = query;
  switch (request.method) {
    case 'GET':
    case 'HEAD': {
      // `GET ?list=true` is Vault's documented alternative to the LIST method.
      const list = /^(1|t|true)$/i.test(String(query.list ?? ''));
      delete query.list;
      operation = list ? 'list' : 'read';
      break;
    }
    case 'LIST':
      operation = 'list';
      break;
    case 'DELETE':
      operation = 'delete';
      break;
    case 'POST':
    case 'PUT':
    case 'PATCH':
      operation = request.method === 'PATCH' ? 'patch' : 'update';
      if (request.body !== undefined && !isObject(request.body)) {
        throw vaultFailure(400, 'failed to parse JSON input: body must be a JSON object');
      }
      data = (request.body as Record<string, unknown> | undefined) ?? {};
      break;
    default:
      throw vaultFailure(405, multiError('unsupported operation'));
  }
  if (operation === 'list' && !path.endsWith('/')) path += '/';

  const header = (name: string) => {
    const value = request.headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const clientToken = header('x-vault-token') ?? BEARER.exec(header('authorization') ?? '')?.[1] ?? '';
  const wrapHeader = header('x-vault-wrap-ttl');
  return {
    path,
    operation,
    data,
    clientToken,
    wrapTtl: wrapHeader === undefined ? 0 : parseDurationSeconds(wrapHeader, 'wrap TTL'),
  };
}
