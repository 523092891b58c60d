// The SecretStore on Vault's KV v2 engine, through the service's one Vault client.
import { jobScope, kubernetesGrants } from './kubernetes-grants.ts';
import type { KeySecret, SecretMetadata, SecretStore, WrappedSecret } from './secret-store.ts';
import { VaultError } from './secret-store.ts';
import { unlessMissing, type VaultClient } from './vault-client.ts';

export interface VaultSecretStoreOptions {
  vault: VaultClient;
  kvMount: string;
  pathPrefix: string;
  /** Mount of the Kubernetes auth method; default `kubernetes`. */
  kubernetesAuthMount?: string;
}

type Destroyed = 'destroyed' | 'already-gone' | 'not-ours';

// Characters that would change the meaning of the request URL rather than name a path segment.
const UNSAFE_SEGMENT = /[\s?#%\\\p{Cc}]/u;
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

const checked = (path: string) => segmentsOf(path, 'secret path').join('/');

async function readOwner(
  vault: VaultClient,
  mount: string,
  path: string,
): Promise<{ keyId: string | undefined } | undefined> {
  const body = await unlessMissing(
    vault.read(`${mount}/metadata/${path}`, { what: `metadata read ${path}` }),
  );
  if (body === undefined) return undefined;
  const custom = (body as { data?: { custom_metadata?: Record<string, unknown> | null } } | null)?.data
    ?.custom_metadata;
  return { keyId: typeof custom?.keyId === 'string' ? custom.keyId : undefined };
}

async function writeSecret(
  vault: VaultClient,
  mount: string,
  path: string,
  secret: KeySecret,
  metadata: SecretMetadata,
): Promise<void> {
  const key = checked(path);
  if (Number.isNaN(metadata.expiresAt.getTime())) throw new VaultError('invalid', 'expiresAt is not a date');
  const sensitive = [secret.privateKey, secret.publicKey];
  // Ownership goes in before the key material: a crash between the two writes leaves an empty
  // entry that names its key, which destroy(path, keyId) still removes. max_versions 1 makes a
  // rewrite of the path drop the previous private key instead of keeping it as an old version.
  await vault.write(
    `${mount}/metadata/${key}`,
    {
      max_versions: 1,
      custom_metadata: { keyId: metadata.keyId, expiresAt: metadata.expiresAt.toISOString() },
    },
    { what: `metadata write ${key}`, sensitive },
  );
  await vault.write(
    `${mount}/data/${key}`,
    {
      data: {
        'ssh-privatekey': secret.privateKey,
        'ssh-publickey': secret.publicKey,
        known_hosts: secret.knownHosts,
        fingerprint: secret.fingerprint,
      },
    },
    { what: `write ${key}`, sensitive },
  );
}

async function wrapSecret(
  vault: VaultClient,
  mount: string,
  path: string,
  ttlSeconds: number,
): Promise<WrappedSecret> {
  const key = checked(path);
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) {
    throw new VaultError('invalid', `wrap TTL must be a positive whole number of seconds`);
  }
  const body = await vault.read(`${mount}/data/${key}`, {
    what: `wrapped read ${key}`,
    headers: { 'X-Vault-Wrap-TTL': `${ttlSeconds}s` },
  });
  const info = (body as { wrap_info?: { token?: unknown; accessor?: unknown } | null } | null)?.wrap_info;
  // An unwrapped answer holds the private key itself; it must not travel further.
  if (typeof info?.token !== 'string' || info.token === '' || typeof info.accessor !== 'string') {
    throw new VaultError('unavailable', `Vault wrapped read ${key} returned no wrapping token`);
  }
  return { token: info.token, accessor: info.accessor };
}

async function readSecret(vault: VaultClient, mount: string, path: string): Promise<KeySecret | undefined> {
  const key = checked(path);
  // Also a 404: an entry with metadata only, or whose current version was deleted or destroyed.
  const body = await unlessMissing(vault.read(`${mount}/data/${key}`, { what: `read ${key}` }));
  if (body === undefined) return undefined;
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
}

/** The key's secret itself, in KV v2 at `<mount>/data/<path>` with its ownership in the metadata. */
function keySecrets(
  vault: VaultClient,
  mount: string,
): Pick<SecretStore, 'write' | 'wrap' | 'revokeWrapToken' | 'destroy' | 'read'> {
  return {
    write: (path, secret, metadata) => writeSecret(vault, mount, path, secret, metadata),
    wrap: (path, ttlSeconds) => wrapSecret(vault, mount, path, ttlSeconds),
    read: (path) => readSecret(vault, mount, path),

    async revokeWrapToken(accessor: string) {
      try {
        await vault.write('auth/token/revoke-accessor', { accessor }, { what: 'revoke-accessor' });
      } catch (error) {
        // Vault before 1.10 answers 400 "invalid accessor" for a token already gone (used or expired).
        if (error instanceof VaultError && error.status === 400 && /invalid accessor/.test(error.message))
          return;
        throw error;
      }
    },

    async destroy(path: string, keyId?: string): Promise<Destroyed> {
      const key = checked(path);
      const found = await readOwner(vault, mount, key);
      if (!found) return 'already-gone';
      if (keyId !== undefined && found.keyId !== undefined && found.keyId !== keyId) return 'not-ours';
      const deleted = await unlessMissing(
        vault.delete(`${mount}/metadata/${key}`, { what: `metadata delete ${key}` }).then(() => true),
      );
      return deleted ? 'destroyed' : 'already-gone';
    },
  };
}

export function createVaultSecretStore(options: VaultSecretStoreOptions): SecretStore {
  const mount = trimSlashes(options.kvMount);
  const prefix = trimSlashes(options.pathPrefix);
  segmentsOf(mount, 'KV mount');
  if (prefix !== '') segmentsOf(prefix, 'path prefix');
  const kubernetesMount = trimSlashes(options.kubernetesAuthMount ?? 'kubernetes');
  segmentsOf(kubernetesMount, 'Kubernetes auth mount');
  const underPrefix = (below: string) => checked(prefix === '' ? below : `${prefix}/${below}`);

  return {
    mount,

    pathFor: (ownerScope, jobId, provider, repository) =>
      underPrefix(`${ownerScope}/${jobId}/${provider}/${repository}`),
    jobPathFor: (namespace, jobName, provider, repository) =>
      underPrefix(`${jobScope(namespace, jobName)}/${provider}/${repository}`),

    ...keySecrets(options.vault, mount),
    ...kubernetesGrants(options.vault, { mount, kubernetesMount, checked, underPrefix }),
  };
}
