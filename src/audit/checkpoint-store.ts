// Where signed audit checkpoints live: Vault KV v2, outside Postgres, so rewriting or truncating
// the audit table cannot also rewrite the anchor it is checked against.
import vault from 'node-vault';
import { VaultError, type VaultErrorKind } from '../vault/secret-store.ts';
import type { AuditCheckpoint } from './checkpoint-signing.ts';

export interface CheckpointStore {
  /** `<mount>/data/<path>`, for messages. */
  readonly location: string;
  read(): Promise<AuditCheckpoint | undefined>;
  write(checkpoint: AuditCheckpoint): Promise<void>;
}

export interface VaultCheckpointStoreOptions {
  addr: string;
  token: string;
  kvMount: string;
  /** The service's key path prefix; checkpoints go to `<pathPrefix>-audit/checkpoints/latest`. */
  pathPrefix: string;
  timeoutMs?: number;
}

const FIELDS = ['seq', 'head', 'at', 'signature', 'publicKey'] as const;
const trimSlashes = (text: string) => text.replace(/^\/+|\/+$/g, '');

function kindOf(status: number): VaultErrorKind {
  if (status === 401 || status === 403) return 'forbidden';
  if (status === 412 || status === 429 || status >= 500) return 'unavailable';
  return 'invalid';
}

export function checkpointPath(pathPrefix: string): string {
  // A sibling of the key prefix, not below it: per-key Vault policies grant `<pathPrefix>/…`, and
  // none of them may reach the anchor.
  return `${trimSlashes(pathPrefix)}-audit/checkpoints/latest`;
}

export function createVaultCheckpointStore(options: VaultCheckpointStoreOptions): CheckpointStore {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const mount = trimSlashes(options.kvMount);
  const path = `${mount}/data/${checkpointPath(options.pathPrefix)}`;
  const config: Parameters<typeof vault>[0] & { rpDefaults: { strictSSL: boolean } } = {
    endpoint: options.addr,
    token: options.token,
    apiVersion: 'v1',
    debug: () => undefined,
    // Otherwise VAULT_SKIP_VERIFY in the environment would switch off TLS verification.
    rpDefaults: { strictSSL: true },
  };
  const client = vault(config);
  // node-vault falls back to VAULT_PREFIX and VAULT_NAMESPACE; only our configuration may shape URLs.
  Object.assign(client, { pathPrefix: '', namespace: undefined });

  // The caught error is never passed on: node-vault's errors carry the request's X-Vault-Token.
  const call = async <T>(operation: string, send: () => Promise<T>): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new VaultError('timeout', `Vault ${operation} ${path} timed out after ${timeoutMs}ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([send(), expired]);
    } catch (error) {
      if (error instanceof VaultError) throw error;
      const status = (error as { response?: { statusCode?: unknown } } | null)?.response?.statusCode;
      if (typeof status === 'number') {
        throw new VaultError(kindOf(status), `Vault ${operation} ${path} failed with status ${status}`, {
          status,
        });
      }
      const code = (error as { code?: unknown } | null)?.code;
      const safe = typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code) ? code : 'network error';
      throw new VaultError('unavailable', `Vault ${operation} ${path} unreachable (${safe})`);
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    location: path,

    async read() {
      let body: unknown;
      try {
        body = await call('read', () => client.read(path, { timeout: timeoutMs }));
      } catch (error) {
        if (error instanceof VaultError && error.status === 404) return undefined;
        throw error;
      }
      const data = (body as { data?: { data?: Record<string, unknown> | null } } | null)?.data?.data;
      const values = FIELDS.map((field) => data?.[field]);
      if (!values.every((value): value is string => typeof value === 'string')) {
        throw new VaultError('invalid', `Vault secret ${path} is not an audit checkpoint`);
      }
      const [seq, head, at, signature, publicKey] = values as [string, string, string, string, string];
      return { seq, head, at, signature, publicKey };
    },

    async write(checkpoint) {
      const data = Object.fromEntries(FIELDS.map((field) => [field, checkpoint[field]]));
      // KV v2 keeps earlier versions (per the mount's max_versions), so recent checkpoints stay readable.
      await call('write', () => client.write(path, { data }, { timeout: timeoutMs }));
    },
  };
}
