// Response wrapping: a response requested with `X-Vault-Wrap-TTL` is stored behind a single-use
// token and answered with `wrap_info`; `sys/wrapping/unwrap` hands the original body out once.
import { randomUUID } from 'node:crypto';
import { badRequest, goTime, type VaultRequest, type VaultRoute } from './http.ts';
import { RESPONSE_WRAPPING } from './policies.ts';
import type { TokenStore } from './tokens.ts';

const INVALID_WRAPPING_TOKEN = 'wrapping token is not valid or does not exist';

interface WrappedResponse {
  body: unknown;
  creationPath: string;
  creationTime: string;
  ttl: number;
}

export interface Wrapping {
  /** The envelope Vault answers instead of `body`; `body` waits behind a new wrapping token. */
  wrap(body: unknown, request: VaultRequest, wrappedAccessor: string): Record<string, unknown>;
  routes: VaultRoute[];
}

export function createWrapping(tokens: TokenStore): Wrapping {
  const wrapped = new Map<string, WrappedResponse>();

  const tokenOf = (request: VaultRequest) =>
    typeof request.data.token === 'string' && request.data.token !== ''
      ? request.data.token
      : request.clientToken;

  const live = (token: string) => {
    const info = wrapped.get(token);
    if (info && tokens.lookup(token)) return info;
    wrapped.delete(token);
    return undefined;
  };

  // vault.ValidateWrappingToken runs before the token check, so a spent or expired wrapping
  // token is a 400 rather than the 403 an ordinary bad token gets.
  const validate = (request: VaultRequest) => {
    if (!live(tokenOf(request))) throw badRequest(INVALID_WRAPPING_TOKEN);
  };

  return {
    wrap: (body, request, wrappedAccessor) => {
      const entry = tokens.issue({
        policies: [RESPONSE_WRAPPING],
        ttl: request.wrapTtl,
        numUses: 1,
        displayName: '',
        path: request.path,
        renewable: false,
      });
      const creationTime = goTime(new Date(entry.createdAt));
      wrapped.set(entry.id, { body, creationPath: request.path, creationTime, ttl: request.wrapTtl });
      return {
        request_id: randomUUID(),
        lease_id: '',
        renewable: false,
        lease_duration: 0,
        data: null,
        wrap_info: {
          token: entry.id,
          accessor: entry.accessor,
          ttl: request.wrapTtl,
          creation_time: creationTime,
          creation_path: request.path,
          wrapped_accessor: wrappedAccessor,
        },
        warnings: null,
        auth: null,
      };
    },
    routes: [
      {
        pattern: /^sys\/wrapping\/unwrap$/,
        validate,
        operations: {
          update: (request) => {
            const token = tokenOf(request);
            const info = live(token);
            if (!info) throw badRequest(INVALID_WRAPPING_TOKEN);
            wrapped.delete(token);
            // Unwrapped by a third party: the wrapping token is spent here rather than by its own use.
            if (token !== request.clientToken) tokens.revoke(token);
            return { raw: { status: 200, body: info.body } };
          },
        },
      },
      {
        pattern: /^sys\/wrapping\/lookup$/,
        auth: 'none',
        operations: {
          update: (request) => {
            const token = tokenOf(request);
            if (token === '') throw badRequest('missing "token" value in input');
            const info = live(token);
            if (!info) throw badRequest(INVALID_WRAPPING_TOKEN);
            return {
              data: {
                creation_path: info.creationPath,
                creation_time: info.creationTime,
                creation_ttl: info.ttl,
              },
            };
          },
        },
      },
      {
        pattern: /^sys\/wrapping\/wrap$/,
        operations: {
          update: (request) => {
            if (request.wrapTtl === 0) throw badRequest('endpoint requires response wrapping to be used');
            return { data: request.data };
          },
        },
      },
    ],
  };
}
