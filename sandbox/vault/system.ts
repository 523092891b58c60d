// The system paths a Vault client calls first, answered as a dev-mode Vault (one unseal key,
// in-memory storage, active and unsealed) answers them: sys/health with its status-code
// parameters, sys/seal-status, sys/init and sys/leader (unauthenticated raw handlers in Vault),
// and the mount table at sys/mounts.
import { randomBytes, randomUUID } from 'node:crypto';
import type { VaultRoute } from './http.ts';

export const VAULT_VERSION = '1.17.2';
const BUILD_DATE = '2024-07-05T15:19:12Z';

export interface VaultIdentity {
  clusterName: string;
  clusterId: string;
}

export function newVaultIdentity(): VaultIdentity {
  return { clusterName: `vault-cluster-${randomBytes(4).toString('hex')}`, clusterId: randomUUID() };
}

const HEALTH_CODES = [
  'uninitcode',
  'sealedcode',
  'standbycode',
  'activecode',
  'drsecondarycode',
  'performancestandbycode',
];
const BOOLEAN = /^(1|t|true|0|f|false)$/i;

/** http/sys_health.go: status and body for GET or HEAD; a bad parameter is a 400 with no errors. */
export function healthAnswer(
  query: Record<string, string | undefined>,
  identity: VaultIdentity,
): { status: number; body?: unknown } {
  for (const flag of ['standbyok', 'perfstandbyok']) {
    const value = query[flag];
    if (value !== undefined && !BOOLEAN.test(value)) return { status: 400, body: { errors: [] } };
  }
  for (const name of HEALTH_CODES) {
    const value = query[name];
    if (value !== undefined && !/^[-+]?\d+$/.test(value)) return { status: 400, body: { errors: [] } };
  }
  // Initialized, unsealed, active and no replication: only `activecode` can change the answer.
  const status = query.activecode === undefined ? 200 : Number(query.activecode);
  return {
    status,
    body: {
      initialized: true,
      sealed: false,
      standby: false,
      performance_standby: false,
      replication_performance_mode: 'disabled',
      replication_dr_mode: 'disabled',
      server_time_utc: Math.floor(Date.now() / 1000),
      version: VAULT_VERSION,
      enterprise: false,
      cluster_name: identity.clusterName,
      cluster_id: identity.clusterId,
      echo_duration_ms: 0,
      clock_skew_ms: 0,
      replication_primary_canary_age_ms: 0,
      removed_from_cluster: false,
    },
  };
}

interface MountEntry {
  type: string;
  description: string;
  local: boolean;
  options: Record<string, string> | null;
  runningVersion: string;
  passthroughHeaders?: string[];
}

function mountTable(kvMount: string): Record<string, Record<string, unknown>> {
  const mounts: Record<string, MountEntry> = {
    'cubbyhole/': {
      type: 'cubbyhole',
      description: 'per-token private secret storage',
      local: true,
      options: null,
      runningVersion: `v${VAULT_VERSION}+builtin.vault`,
    },
    'identity/': {
      type: 'identity',
      description: 'identity store',
      local: false,
      options: null,
      runningVersion: `v${VAULT_VERSION}+builtin.vault`,
    },
    [`${kvMount}/`]: {
      type: 'kv',
      description: 'key/value secret storage',
      local: false,
      options: { version: '2' },
      runningVersion: 'v0.19.0+builtin',
    },
    'sys/': {
      type: 'system',
      description: 'system endpoints used for control, policy and debugging',
      local: false,
      options: null,
      runningVersion: `v${VAULT_VERSION}+builtin.vault`,
      passthroughHeaders: ['Accept'],
    },
  };
  return Object.fromEntries(
    Object.entries(mounts).map(([path, mount]) => [
      path,
      {
        accessor: `${mount.type === 'system' ? 'system' : mount.type}_${randomBytes(4).toString('hex')}`,
        config: {
          default_lease_ttl: 0,
          force_no_cache: false,
          max_lease_ttl: 0,
          ...(mount.passthroughHeaders ? { passthrough_request_headers: mount.passthroughHeaders } : {}),
        },
        ...(mount.type === 'kv' ? { deprecation_status: 'supported' } : {}),
        description: mount.description,
        external_entropy_access: false,
        local: mount.local,
        options: mount.options,
        plugin_version: '',
        running_plugin_version: mount.runningVersion,
        running_sha256: '',
        seal_wrap: false,
        type: mount.type,
        uuid: randomUUID(),
      },
    ]),
  );
}

export function createSystemRoutes(identity: VaultIdentity, kvMount: string): VaultRoute[] {
  const mounts = mountTable(kvMount);
  const raw = (body: unknown) => ({ raw: { status: 200, body } });
  return [
    {
      pattern: /^sys\/seal-status$/,
      auth: 'none',
      operations: {
        read: () =>
          raw({
            type: 'shamir',
            initialized: true,
            sealed: false,
            t: 1,
            n: 1,
            progress: 0,
            nonce: '',
            version: VAULT_VERSION,
            build_date: BUILD_DATE,
            migration: false,
            cluster_name: identity.clusterName,
            cluster_id: identity.clusterId,
            recovery_seal: false,
            storage_type: 'inmem',
            removed_from_cluster: false,
          }),
      },
    },
    {
      pattern: /^sys\/init$/,
      auth: 'none',
      operations: {
        read: () => raw({ initialized: true }),
        update: () => ({ raw: { status: 400, body: { errors: ['Vault is already initialized'] } } }),
      },
    },
    {
      pattern: /^sys\/leader$/,
      auth: 'none',
      operations: {
        read: () =>
          raw({
            ha_enabled: false,
            is_self: false,
            active_time: '0001-01-01T00:00:00Z',
            leader_address: '',
            leader_cluster_address: '',
            performance_standby: false,
            performance_standby_last_remote_wal: 0,
          }),
      },
    },
    { pattern: /^sys\/mounts$/, operations: { read: () => ({ data: structuredClone(mounts) }) } },
    {
      pattern: /^sys\/mounts\/(.+?)\/?$/,
      operations: {
        read: (_request, match) => {
          const mount = mounts[`${match[1]}/`];
          return mount ? { data: structuredClone(mount) } : null;
        },
      },
    },
  ];
}
