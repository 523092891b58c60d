// The SecretStore on Vault's KV v2 engine, spoken through node-vault.
import vault from 'node-vault';
import {
  type KeySecret,
  type SecretMetadata,
  type SecretStore,
  VaultError,
  type VaultErrorKind,
  type WrappedSecret,
} from './secret-store.ts';
import { vaultTransport } from './vault-transport.ts';

export interface VaultSecretStoreOptions {
  addr: string;
  token: string;
  kvMount: string;
  pathPrefix: string;
  /** Mount of the Kubernetes auth method; default `kubernetes`. */
  kubernetesAuthMount?: string;
  /** Deadline of each Vault request; default 5000. */
  timeoutMs?: number;
}

const grantName = (keyId: string) => {
  if (!/^[0-9a-f-]{36}$/.test(keyId)) throw new VaultError('invalid', 'grant names need a key id');
  return `deploykey-${keyId}`;
};

type Destroyed = 'destroyed' | 'already-gone' | 'not-ours';
type RequestOptions = { timeout: number; headers?: Record<string, string> };

// Characters that would change the meaning of the request URL rather than name a path segment.
const UNSAFE_SEGMENT = /[\s?#%\\\p{Cc}]/u;
const TIMED_OUT = Symbol('timed out');
const MAX_ERROR_TEXT = 300;
const FIELDS = ['ssh-privatekey', 'ssh-publickey', 'known_hosts', 'fingerprint'] as const;

function segmentsOf(path: string, what: string): string[] {
  const segments = path.split('/');
  for (const segment of segments) {
    if (segment === '' || segment === '.' || segment === '..' || UNSAFE_SEGMENT.test(segment)) {
      throw new VaultError('invalid', `${what} ${JSON.stringify(path)} has an empty, dot or unsafe segment`);
    }
  }
  return segments;
}

const trimSlashes = (text: string) => text.replace(/^\/+|\/+$/g, '');

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

export function createVaultSecretStore(options: VaultSecretStoreOptions): SecretStore {
  const timeoutMs = options.timeoutMs ?? 5000;
  const mount = trimSlashes(options.kvMount);
  const prefix = trimSlashes(options.pathPrefix);
  segmentsOf(mount, 'KV mount');
  if (prefix !== '') segmentsOf(prefix, 'path prefix');
  if (options.token === '') throw new VaultError('invalid', 'Vault token is empty');

  const config: Parameters<typeof vault>[0] & {
    rpDefaults: { strictSSL: boolean };
    'request-promise': typeof vaultTransport;
  } = {
    endpoint: options.addr,
    token: options.token,
    apiVersion: 'v1',
    // node-vault's debug channel prints request bodies, which here hold private keys.
    debug: () => undefined,
    // Otherwise VAULT_SKIP_VERIFY in the environment would switch off TLS verification.
    rpDefaults: { strictSSL: true },
    'request-promise': vaultTransport,
  };
  const client = vault(config);
  // node-vault falls back to VAULT_PREFIX and VAULT_NAMESPACE; only our configuration may shape URLs.
  Object.assign(client, { pathPrefix: '', namespace: undefined });

  const sensitive = [options.token];
  const scrub = (text: string, extra: readonly string[]) =>
    [...sensitive, ...extra]
      .filter((value) => value.length >= 4)
      .reduce((result, value) => result.split(value).join('[redacted]'), text)
      .slice(0, MAX_ERROR_TEXT);

  // Never pass the caught error on as `cause`: node-vault's network failures are axios errors whose
  // config carries the X-Vault-Token header and the request body with the private key.
  const translate = (
    error: unknown,
    operation: string,
    path: string,
    extra: readonly string[],
  ): VaultError => {
    if (error instanceof VaultError) return error;
    if (error === TIMED_OUT) {
      return new VaultError('timeout', `Vault ${operation} ${path} timed out after ${timeoutMs}ms`);
    }
    const response = (error as { response?: { statusCode?: unknown; body?: unknown } } | null)?.response;
    if (typeof response?.statusCode === 'number') {
      const status = response.statusCode;
      const detail = errorsOf(response.body)
        .map((text) => scrub(text, extra))
        .join('; ');
      const message = `Vault ${operation} ${path} failed with status ${status}${detail ? `: ${detail}` : ''}`;
      return new VaultError(kindOfStatus(status), message, { status });
    }
    const code = (error as { code?: unknown } | null)?.code;
    const safeCode = typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code) ? code : 'network error';
    if (code === 'ECONNABORTED' || code === 'ETIMEDOUT') {
      return new VaultError('timeout', `Vault ${operation} ${path} timed out (${safeCode})`);
    }
    return new VaultError('unavailable', `Vault ${operation} ${path} unreachable (${safeCode})`);
  };

  const call = async <T>(
    operation: string,
    path: string,
    send: (requestOptions: RequestOptions) => Promise<T>,
    extra: readonly string[] = [],
    headers?: Record<string, string>,
  ): Promise<T> => {
    try {
      return await withDeadline(send({ timeout: timeoutMs, ...(headers ? { headers } : {}) }), timeoutMs);
    } catch (error) {
      throw translate(error, operation, path, extra);
    }
  };

  const checked = (path: string) => segmentsOf(path, 'secret path').join('/');
  const kubernetesMount = trimSlashes(options.kubernetesAuthMount ?? 'kubernetes');
  segmentsOf(kubernetesMount, 'Kubernetes auth mount');

  const deleteIfPresent = async (operation: string, path: string) => {
    try {
      await call(operation, path, (request) => client.delete(path, request));
    } catch (error) {
      if (!(error instanceof VaultError && error.status === 404)) throw error;
    }
  };

  const readOwner = async (path: string): Promise<{ keyId: string | undefined } | undefined> => {
    try {
      const body = await call('metadata read', path, (request) =>
        client.read(`${mount}/metadata/${path}`, request),
      );
      const custom = (body as { data?: { custom_metadata?: Record<string, unknown> | null } } | null)?.data
        ?.custom_metadata;
      return { keyId: typeof custom?.keyId === 'string' ? custom.keyId : undefined };
    } catch (error) {
      if (error instanceof VaultError && error.status === 404) return undefined;
      throw error;
    }
  };

  return {
    mount,

    pathFor(ownerScope, jobId, provider, repository) {
      const below = `${ownerScope}/${jobId}/${provider}/${repository}`;
      return checked(prefix === '' ? below : `${prefix}/${below}`);
    },

    async write(path: string, secret: KeySecret, metadata: SecretMetadata) {
      const key = checked(path);
      if (Number.isNaN(metadata.expiresAt.getTime()))
        throw new VaultError('invalid', 'expiresAt is not a date');
      const material = [secret.privateKey, secret.publicKey];
      // Ownership goes in before the key material: a crash between the two writes leaves an empty
      // entry that names its key, which destroy(path, keyId) still removes. max_versions 1 makes a
      // rewrite of the path drop the previous private key instead of keeping it as an old version.
      await call(
        'metadata write',
        key,
        (request) =>
          client.write(
            `${mount}/metadata/${key}`,
            {
              max_versions: 1,
              custom_metadata: { keyId: metadata.keyId, expiresAt: metadata.expiresAt.toISOString() },
            },
            request,
          ),
        material,
      );
      await call(
        'write',
        key,
        (request) =>
          client.write(
            `${mount}/data/${key}`,
            {
              data: {
                'ssh-privatekey': secret.privateKey,
                'ssh-publickey': secret.publicKey,
                known_hosts: secret.knownHosts,
                fingerprint: secret.fingerprint,
              },
            },
            request,
          ),
        material,
      );
    },

    async wrap(path: string, ttlSeconds: number): Promise<WrappedSecret> {
      const key = checked(path);
      if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) {
        throw new VaultError('invalid', `wrap TTL must be a positive whole number of seconds`);
      }
      const body = await call(
        'wrapped read',
        key,
        (request) => client.read(`${mount}/data/${key}`, request),
        [],
        { 'X-Vault-Wrap-TTL': `${ttlSeconds}s` },
      );
      const info = (body as { wrap_info?: { token?: unknown; accessor?: unknown } | null } | null)?.wrap_info;
      // An unwrapped answer holds the private key itself; it must not travel further.
      if (typeof info?.token !== 'string' || info.token === '' || typeof info.accessor !== 'string') {
        throw new VaultError('unavailable', `Vault wrapped read ${key} returned no wrapping token`);
      }
      return { token: info.token, accessor: info.accessor };
    },

    async revokeWrapToken(accessor: string) {
      try {
        await call('revoke-accessor', 'auth/token/revoke-accessor', (request) =>
          client.write('auth/token/revoke-accessor', { accessor }, request),
        );
      } catch (error) {
        // Vault before 1.10 answers 400 "invalid accessor" for a token already gone (used or expired).
        if (error instanceof VaultError && error.status === 400 && /invalid accessor/.test(error.message))
          return;
        throw error;
      }
    },

    async destroy(path: string, keyId?: string): Promise<Destroyed> {
      const key = checked(path);
      const found = await readOwner(key);
      if (!found) return 'already-gone';
      if (keyId !== undefined && found.keyId !== undefined && found.keyId !== keyId) return 'not-ours';
      try {
        await call('metadata delete', key, (request) => client.delete(`${mount}/metadata/${key}`, request));
      } catch (error) {
        if (error instanceof VaultError && error.status === 404) return 'already-gone';
        throw error;
      }
      return 'destroyed';
    },

    async read(path: string): Promise<KeySecret | undefined> {
      const key = checked(path);
      let body: unknown;
      try {
        body = await call('read', key, (request) => client.read(`${mount}/data/${key}`, request));
      } catch (error) {
        // Also a 404: an entry with metadata only, or whose current version was deleted or destroyed.
        if (error instanceof VaultError && error.status === 404) return undefined;
        throw error;
      }
      const data = (body as { data?: { data?: Record<string, unknown> | null } } | null)?.data?.data;
      const [privateKey, publicKey, knownHosts, fingerprint] = FIELDS.map((name) =>
        typeof data?.[name] === 'string' ? data[name] : undefined,
      );
      if (
        privateKey === undefined ||
        publicKey === undefined ||
        knownHosts === undefined ||
        fingerprint === undefined
      ) {
        throw new VaultError('invalid', `Vault secret ${key} lacks the ssh-auth fields`);
      }
      return { privateKey, publicKey, knownHosts, fingerprint };
    },

    async grantKubernetesRead(path, grant) {
      const key = checked(path);
      const name = grantName(grant.keyId);
      for (const value of [grant.namespace, grant.serviceAccount]) {
        if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(value)) {
          throw new VaultError('invalid', 'namespace and service account must be Kubernetes names');
        }
      }
      // Read on exactly this key's data path: no list, no metadata, no other key.
      const policy = `path "${mount}/data/${key}" {\n  capabilities = ["read"]\n}\n`;
      await call('policy write', name, (request) =>
        client.write(`sys/policies/acl/${name}`, { policy }, request),
      );
      await call('role write', name, (request) =>
        client.write(
          `auth/${kubernetesMount}/role/${name}`,
          {
            bound_service_account_names: [grant.serviceAccount],
            bound_service_account_namespaces: [grant.namespace],
            audience: grant.audience,
            token_policies: [name],
            token_ttl: Math.max(1, grant.tokenTtlSeconds),
            token_max_ttl: Math.max(1, grant.tokenTtlSeconds),
          },
          request,
        ),
      );
      return name;
    },

    async removeKubernetesRead(keyId) {
      const name = grantName(keyId);
      // The role first: without it nobody can log in, even while the policy still exists.
      await deleteIfPresent('role delete', `auth/${kubernetesMount}/role/${name}`);
      await deleteIfPresent('policy delete', `sys/policies/acl/${name}`);
    },

    async ownerOf(path: string) {
      return (await readOwner(checked(path)))?.keyId;
    },
  };
}
