// Who may read a Kubernetes caller's key from Vault. A caller that takes its key through Vault gets
// a per-key Vault policy and Kubernetes-auth role, so only its own service account can read that
// one key, and only while the key lives. The keys the controller issues for a Job instead share one
// role per Job, which the Job's manifest can name before any key exists; it lives while any of the
// Job's keys is pending or active (src/keys/job-grant-lock.ts).
import type { DeployKeyRow } from '../db/schema.ts';
import type { Delivery, KeyBinding } from '../model/schemas.ts';
import { isJobName, jobRoleName, jobScope, keyRoleName } from '../vault/kubernetes-grants.ts';
import type { KubernetesGrant } from '../vault/secret-store.ts';
import type { Caller } from './caller.ts';
import type { KeyServiceDeps } from './key-service-deps.ts';

type GrantDeps = Pick<KeyServiceDeps, 'keys' | 'secrets' | 'settings'>;

interface KubernetesClaim {
  namespace?: unknown;
  serviceaccount?: { name?: unknown };
}

function serviceAccountOf(
  details: Record<string, unknown>,
): { namespace: string; serviceAccount: string } | undefined {
  if (details.kind !== 'kubernetes') return undefined;
  const claim = (details.claims as Record<string, unknown> | undefined)?.['kubernetes.io'] as
    | KubernetesClaim
    | undefined;
  const namespace = claim?.namespace;
  const serviceAccount = claim?.serviceaccount?.name;
  if (typeof namespace !== 'string' || typeof serviceAccount !== 'string') return undefined;
  return { namespace, serviceAccount };
}

interface JobOfKey {
  namespace: string;
  name: string;
}

/** The Job whose folder a key's Vault path is in: set for keys the controller issued for a Job. */
export function jobScopedKey(
  row: Pick<DeployKeyRow, 'delivery' | 'binding' | 'vault_path' | 'provider' | 'repository_key'>,
): JobOfKey | undefined {
  const binding = row.binding as KeyBinding | null;
  if (row.delivery !== 'vault' || binding?.kind !== 'kubernetes-job' || !row.vault_path) return undefined;
  const { namespace, name } = binding;
  if (!isJobName(namespace, name)) return undefined;
  // Keys the controller issued before Job folders existed have a caller's path and a per-key role.
  const own = `${jobScope(namespace, name)}/${row.provider}/${row.repository_key}`;
  return `/${row.vault_path}`.endsWith(`/${own}`) ? { namespace, name } : undefined;
}

function kubernetesGrantFor(
  caller: Caller,
  delivery: Delivery,
  keyId: string,
  ttlSeconds: number,
  audience: string,
): KubernetesGrant | undefined {
  if (delivery !== 'vault') return undefined;
  const account = serviceAccountOf(caller.details);
  return account ? { keyId, ...account, tokenTtlSeconds: ttlSeconds, audience } : undefined;
}

/** Whether the key has a Vault role of its own (`deploykey-<keyId>`). */
export function hasKubernetesGrant(row: DeployKeyRow): boolean {
  return (
    row.delivery === 'vault' &&
    serviceAccountOf(row.caller_details) !== undefined &&
    jobScopedKey(row) === undefined
  );
}

/** The Vault role a pod logs in with to read this key, if there is one. */
export function vaultRoleOf(row: DeployKeyRow): string | undefined {
  const job = jobScopedKey(row);
  if (job) return jobRoleName(job.namespace, job.name);
  return hasKubernetesGrant(row) ? keyRoleName(row.id) : undefined;
}

/** Lets the key's service account read it from Vault: through a role of its own, or its Job's. */
export async function grantVaultRead(deps: GrantDeps, caller: Caller, row: DeployKeyRow, ttlSeconds: number) {
  const audience = deps.settings.kubernetesAudience;
  const job = jobScopedKey(row);
  const account = serviceAccountOf(caller.details);
  if (job && account) {
    const grant = { ...account, jobName: job.name, tokenTtlSeconds: ttlSeconds, audience };
    await deps.keys.underJobGrantLock({ jobId: row.job_id, ...job }, () => deps.secrets.grantJobRead(grant));
    return;
  }
  const grant = kubernetesGrantFor(caller, row.delivery, row.id, ttlSeconds, audience);
  if (grant) await deps.secrets.grantKubernetesRead(row.vault_path ?? '', grant);
}

/**
 * Takes away what let pods read the key: its own role, or its Job's once no other key of the Job
 * is pending or active (a revoke of one key of a Job must not cut its other keys off).
 */
export async function removeVaultRead(deps: GrantDeps, row: DeployKeyRow) {
  const job = jobScopedKey(row);
  if (job) {
    await deps.keys.underJobGrantLock({ jobId: row.job_id, ...job }, async (liveKeyIds) => {
      if (liveKeyIds.every((id) => id === row.id)) await deps.secrets.removeJobRead(job.namespace, job.name);
    });
    return;
  }
  if (hasKubernetesGrant(row)) await deps.secrets.removeKubernetesRead(row.id);
}
