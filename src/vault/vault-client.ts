// The one Vault client of the service, on node-vault over our own transport: every part that
// talks to Vault (the key store, the audit checkpoint store, readiness) goes through it, so client
// setup, deadlines, status mapping and the scrubbing of secrets from errors exist once.
import vault from 'node-vault';
import { VaultError, type VaultErrorKind } from './secret-store.ts';
import { vaultTransport } from './vault-transport.ts';

/**
 * Where each request's token comes from. The one place a login method (Kubernetes, AppRole, JWT)
 * or token renewal plugs in: the client asks it before every request and caches nothing.
 */
export type VaultTokenSource = (() => string | Promise<string>) & {
  /**
   * Told when Vault refused `token` (403): resolves true when another token is now to be used
   * (the old one was revoked or expired and the service logged in again), so the request is retried once.
   */
  refused?: (token: string) => Promise<boolean>;
};

/** A fixed token from the configuration. */
export function staticToken(token: string): VaultTokenSource {
  if (token === '') throw new VaultError('invalid', 'Vault token is empty');
  return () => token;
}

export interface VaultClientOptions {
  addr: string;
  token: VaultTokenSource;
  /** Deadline of each Vault request; default 5000. */
  timeoutMs?: number;
}

export interface VaultRequest {
  /** Names the request in errors, e.g. `metadata write deploy-keys/job-1/github/acme/models`. */
  what: string;
  /** Values this request carries that no error may repeat (key material). */
  sensitive?: readonly string[];
  headers?: Record<string, string>;
  /** Sent without a token: a login. */
  anonymous?: boolean;
}

export interface VaultClient {
  read(path: string, request: VaultRequest): Promise<unknown>;
  write(path: string, data: unknown, request: VaultRequest): Promise<unknown>;
  delete(path: string, request: VaultRequest): Promise<unknown>;
  /** Resolves when `sys/health` says this node can serve (a standby's 429 included). */
  health(): Promise<void>;
}

const TIMED_OUT = Symbol('timed out');
/** The token was refused and replaced by a new one: the request is retried once. */
const REPLACED = Symbol('token replaced');
const MAX_ERROR_TEXT = 300;
const HEALTH_TIMEOUT_MS = 2_000;

function kindOfStatus(status: number): VaultErrorKind {
  if (status === 401 || status === 403) return 'forbidden';
  // 412: a standby has not caught up yet (X-Vault-Index); 429: rate-limit quota or standby node.
  if (status === 412 || status === 429 || status >= 500) return 'unavailable';
  return 'invalid';
}

function errorsOf(body: unknown): string[] {
  const errors = (body as { errors?: unknown } | null | undefined)?.errors;
  if (!Array.isArray(errors)) return [];
  return errors.filter((item): item is string => typeof item === 'string');
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(TIMED_OUT), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

const scrub = (text: string, secrets: readonly string[]) =>
  secrets
    .filter((value) => value.length >= 4)
    .reduce((result, value) => result.split(value).join('[redacted]'), text)
    .slice(0, MAX_ERROR_TEXT);

// Never passes the caught error on as `cause`: a network failure's error can carry the request,
// with its X-Vault-Token header and a body holding a private key.
function translate(error: unknown, what: string, timeoutMs: number, secrets: readonly string[]): VaultError {
  if (error instanceof VaultError) return error;
  if (error === TIMED_OUT) return new VaultError('timeout', `Vault ${what} timed out after ${timeoutMs}ms`);
  const response = (error as { response?: { statusCode?: unknown; body?: unknown } } | null)?.response;
  if (typeof response?.statusCode === 'number') {
    const status = response.statusCode;
    const detail = errorsOf(response.body)
      .map((text) => scrub(text, secrets))
      .join('; ');
    return new VaultError(
      kindOfStatus(status),
      `Vault ${what} failed with status ${status}${detail ? `: ${detail}` : ''}`,
      {
        status,
      },
    );
  }
  const code = (error as { code?: unknown } | null)?.code;
  const safeCode = typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code) ? code : 'network error';
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT') {
    return new VaultError('timeout', `Vault ${what} timed out (${safeCode})`);
  }
  return new VaultError('unavailable', `Vault ${what} unreachable (${safeCode})`);
}

export function createVaultClient(options: VaultClientOptions): VaultClient {
  const timeoutMs = options.timeoutMs ?? 5000;
  const config: Parameters<typeof vault>[0] & {
    rpDefaults: { strictSSL: boolean };
    'request-promise': typeof vaultTransport;
  } = {
    endpoint: options.addr,
    apiVersion: 'v1',
    // node-vault's debug channel prints request bodies, which here hold private keys.
    debug: () => undefined,
    // Otherwise VAULT_SKIP_VERIFY in the environment would switch off TLS verification.
    rpDefaults: { strictSSL: true },
    'request-promise': vaultTransport,
  };
  const client = vault(config);
  // node-vault falls back to VAULT_TOKEN, VAULT_PREFIX and VAULT_NAMESPACE from the environment;
  // only our configuration may shape requests, and the token goes in per request below.
  Object.assign(client, { token: undefined, pathPrefix: '', namespace: undefined });

  const call = async (
    request: VaultRequest,
    send: (requestOptions: { timeout: number; headers: Record<string, string> }) => Promise<unknown>,
  ): Promise<unknown> => {
    const secrets = [...(request.sensitive ?? [])];
    const attempt = async (): Promise<unknown> => {
      const token = request.anonymous ? '' : await options.token();
      secrets.push(token);
      const headers = request.anonymous
        ? { ...request.headers }
        : { ...request.headers, 'X-Vault-Token': token };
      try {
        return await withDeadline(send({ timeout: timeoutMs, headers }), timeoutMs);
      } catch (error) {
        const failure = translate(error, request.what, timeoutMs, secrets);
        if (failure.status === 403 && !request.anonymous && (await options.token.refused?.(token))) {
          return REPLACED;
        }
        throw failure;
      }
    };
    try {
      const first = await attempt();
      return first === REPLACED ? await attempt() : first;
    } catch (error) {
      throw translate(error, request.what, timeoutMs, secrets);
    }
  };

  return {
    read: (path, request) => call(request, (requestOptions) => client.read(path, requestOptions)),
    write: (path, data, request) =>
      call(request, (requestOptions) => client.write(path, data, requestOptions)),
    delete: (path, request) => call(request, (requestOptions) => client.delete(path, requestOptions)),

    // sys/health answers with its status alone, which node-vault would turn into a body.
    async health() {
      const uri = new URL('/v1/sys/health', options.addr).href;
      const response = await withDeadline(
        vaultTransport.defaults()({ method: 'GET', uri, timeout: HEALTH_TIMEOUT_MS }),
        HEALTH_TIMEOUT_MS,
      ).catch((error: unknown) => {
        throw translate(error, 'health check', HEALTH_TIMEOUT_MS, []);
      });
      // 429 is a healthy standby node, as Vault documents for sys/health.
      if (response.statusCode !== 200 && response.statusCode !== 429) {
        throw new VaultError('unavailable', `Vault sys/health answered ${response.statusCode}`, {
          status: response.statusCode,
        });
      }
    },
  };
}

/** Resolves undefined where Vault answered 404: nothing at that path. */
export async function unlessMissing<T>(request: Promise<T>): Promise<T | undefined> {
  try {
    return await request;
  } catch (error) {
    if (error instanceof VaultError && error.status === 404) return undefined;
    throw error;
  }
}
