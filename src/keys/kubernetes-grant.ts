// A Kubernetes caller that takes its key through Vault gets a per-key Vault policy and
// Kubernetes-auth role, so only its own service account can read that one key, and only while
// the key lives.
import type { DeployKeyRow } from '../db/schema.ts';
import type { KubernetesGrant } from '../vault/secret-store.ts';
import type { Caller } from './caller.ts';
import type { DeliveryMode } from './policy.ts';

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

export function kubernetesGrantFor(
  caller: Caller,
  delivery: DeliveryMode,
  keyId: string,
  ttlSeconds: number,
  audience: string,
): KubernetesGrant | undefined {
  if (delivery !== 'vault') return undefined;
  const account = serviceAccountOf(caller.details);
  return account ? { keyId, ...account, tokenTtlSeconds: ttlSeconds, audience } : undefined;
}

export function hasKubernetesGrant(row: DeployKeyRow): boolean {
  return row.delivery === 'vault' && serviceAccountOf(row.caller_details) !== undefined;
}

export const kubernetesRoleName = (keyId: string) => `deploykey-${keyId}`;
