// Where signed audit checkpoints live: Vault KV v2, outside Postgres, so rewriting or truncating
// the audit table cannot also rewrite the anchor it is checked against.
import { VaultError } from '../vault/secret-store.ts';
import { unlessMissing, type VaultClient } from '../vault/vault-client.ts';
import type { AuditCheckpoint } from './checkpoint-signing.ts';

export interface CheckpointStore {
  /** `<mount>/data/<path>`, for messages. */
  readonly location: string;
  read(): Promise<AuditCheckpoint | undefined>;
  write(checkpoint: AuditCheckpoint): Promise<void>;
}

export interface VaultCheckpointStoreOptions {
  vault: VaultClient;
  kvMount: string;
  /** The service's key path prefix; checkpoints go to `<pathPrefix>-audit/checkpoints/latest`. */
  pathPrefix: string;
}

const FIELDS = ['seq', 'head', 'at', 'signature', 'publicKey'] as const;
const trimSlashes = (text: string) => text.replace(/^\/+|\/+$/g, '');

export function checkpointPath(pathPrefix: string): string {
  // A sibling of the key prefix, not below it: per-key Vault policies grant `<pathPrefix>/…`, and
  // none of them may reach the anchor.
  return `${trimSlashes(pathPrefix)}-audit/checkpoints/latest`;
}

export function createVaultCheckpointStore(options: VaultCheckpointStoreOptions): CheckpointStore {
  const { vault } = options;
  const path = `${trimSlashes(options.kvMount)}/data/${checkpointPath(options.pathPrefix)}`;

  return {
    location: path,

    async read() {
      const body = await unlessMissing(vault.read(path, { what: `read ${path}` }));
      if (body === undefined) return undefined;
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
      await vault.write(path, { data }, { what: `write ${path}` });
    },
  };
}
