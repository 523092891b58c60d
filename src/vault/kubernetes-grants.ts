// Who may read a key in Vault from a Kubernetes pod: a Vault ACL policy and a Kubernetes-auth role.
// A caller's own key gets a pair per key (`deploykey-<keyId>`); the keys the controller issues for
// a Job share one pair per Job, named from its namespace and name, so the Job's manifest can name
// the role and the paths before any key exists (the Vault Agent injector reads them at pod start).
import type { JobGrant, KubernetesGrant, SecretStore } from './secret-store.ts';
import { VaultError } from './secret-store.ts';
import { unlessMissing, type VaultClient } from './vault-client.ts';

/** The path segment under the prefix that holds Jobs' keys; an owner scope is always `o-<hex>`. */
const JOBS_SEGMENT = 'kubernetes';
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SUBDOMAIN_LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const JOB_NAME = new RegExp(`^${SUBDOMAIN_LABEL}(\\.${SUBDOMAIN_LABEL})*$`);
const SERVICE_ACCOUNT = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

// Namespaces are DNS labels (no dots), so the first dot after the prefix of a role name always
// ends the namespace, whatever dots the Job's name holds.
export const isJobName = (namespace: string, jobName: string) =>
  NAMESPACE.test(namespace) && jobName.length <= 253 && JOB_NAME.test(jobName);

function checkJob(namespace: string, jobName: string): void {
  if (!isJobName(namespace, jobName)) {
    throw new VaultError('invalid', 'a Job grant needs a Kubernetes namespace and Job name');
  }
}

/** `kubernetes/<namespace>/<jobName>`: where below the path prefix a Job's keys live. */
export function jobScope(namespace: string, jobName: string): string {
  checkJob(namespace, jobName);
  return `${JOBS_SEGMENT}/${namespace}/${jobName}`;
}

/** The Vault policy and Kubernetes-auth role shared by a Job's keys: `deploykey-job.<namespace>.<jobName>`. */
export function jobRoleName(namespace: string, jobName: string): string {
  checkJob(namespace, jobName);
  return `deploykey-job.${namespace}.${jobName}`;
}

/** The policy and role of one key of a caller: `deploykey-<keyId>`. */
export function keyRoleName(keyId: string): string {
  if (!/^[0-9a-f-]{36}$/.test(keyId)) throw new VaultError('invalid', 'grant names need a key id');
  return `deploykey-${keyId}`;
}

interface RoleGrant {
  namespace: string;
  serviceAccount: string;
  tokenTtlSeconds: number;
  audience: string;
}

/** The policy `name` granting read on `dataPath` (exact, or a `*` glob), then the role using it. */
async function writePolicyAndRole(
  vault: VaultClient,
  kubernetesMount: string,
  name: string,
  dataPath: string,
  grant: RoleGrant,
): Promise<string> {
  if (!SERVICE_ACCOUNT.test(grant.serviceAccount) || !SERVICE_ACCOUNT.test(grant.namespace)) {
    throw new VaultError('invalid', 'namespace and service account must be Kubernetes names');
  }
  // Read only: no list, no metadata, nothing outside dataPath.
  const policy = `path "${dataPath}" {\n  capabilities = ["read"]\n}\n`;
  await vault.write(`sys/policies/acl/${name}`, { policy }, { what: `policy write ${name}` });
  await vault.write(
    `auth/${kubernetesMount}/role/${name}`,
    {
      bound_service_account_names: [grant.serviceAccount],
      bound_service_account_namespaces: [grant.namespace],
      audience: grant.audience,
      token_policies: [name],
      token_ttl: Math.max(1, grant.tokenTtlSeconds),
      token_max_ttl: Math.max(1, grant.tokenTtlSeconds),
    },
    { what: `role write ${name}` },
  );
  return name;
}

async function removePolicyAndRole(vault: VaultClient, kubernetesMount: string, name: string) {
  const role = `auth/${kubernetesMount}/role/${name}`;
  const policy = `sys/policies/acl/${name}`;
  // The role first: without it nobody can log in, even while the policy still exists.
  await unlessMissing(vault.delete(role, { what: `role delete ${role}` }));
  await unlessMissing(vault.delete(policy, { what: `policy delete ${policy}` }));
}

export function kubernetesGrants(
  vault: VaultClient,
  options: {
    mount: string;
    kubernetesMount: string;
    /** A path below the mount, checked segment by segment. */
    checked: (path: string) => string;
    /** The same for a path below the configured prefix. */
    underPrefix: (below: string) => string;
  },
): Pick<SecretStore, 'grantKubernetesRead' | 'removeKubernetesRead' | 'grantJobRead' | 'removeJobRead'> {
  const { mount, kubernetesMount, checked, underPrefix } = options;
  return {
    grantKubernetesRead: (path: string, grant: KubernetesGrant) =>
      writePolicyAndRole(
        vault,
        kubernetesMount,
        keyRoleName(grant.keyId),
        `${mount}/data/${checked(path)}`,
        grant,
      ),

    removeKubernetesRead: (keyId: string) => removePolicyAndRole(vault, kubernetesMount, keyRoleName(keyId)),

    grantJobRead(grant: JobGrant) {
      const folder = underPrefix(jobScope(grant.namespace, grant.jobName));
      // A glob on the Job's own folder: its content depends on the Job alone, so concurrent grants
      // for the Job's keys write the same policy, and a key issued later is covered without a rewrite.
      const name = jobRoleName(grant.namespace, grant.jobName);
      return writePolicyAndRole(vault, kubernetesMount, name, `${mount}/data/${folder}/*`, grant);
    },

    removeJobRead: (namespace: string, jobName: string) =>
      removePolicyAndRole(vault, kubernetesMount, jobRoleName(namespace, jobName)),
  };
}
