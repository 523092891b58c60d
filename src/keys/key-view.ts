import type { DeployKeyRow } from '../db/schema.ts';
import type { Delivery, KeyBinding, KeyStatus, RevokeReason } from '../model/schemas.ts';
import { vaultRoleOf } from './kubernetes-grant.ts';

export interface KeyView {
  id: string;
  provider: string;
  repository: string;
  jobId: string;
  caller: string;
  status: KeyStatus;
  attempts: number;
  lastError: string | null;
  delivery: Delivery;
  fingerprint: string | null;
  publicKey: string | null;
  cloneUrl: string;
  knownHosts: string[];
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
  revokeReason: RevokeReason | null;
  /** The platform job whose end revokes the key, if bound to one. */
  binding: KeyBinding | null;
  failureReason: string | null;
  vault: { mount: string; path: string; role?: string } | null;
}

const roleOf = (row: DeployKeyRow) => {
  const role = vaultRoleOf(row);
  return role ? { role } : {};
};

export function toKeyView(
  row: DeployKeyRow,
  extra: { cloneUrl: string; knownHosts: string[]; vaultMount: string },
): KeyView {
  return {
    id: row.id,
    provider: row.provider,
    repository: row.repository,
    jobId: row.job_id,
    caller: row.caller,
    status: row.status,
    attempts: row.attempts,
    lastError: row.last_error,
    delivery: row.delivery,
    fingerprint: row.fingerprint,
    publicKey: row.public_key,
    cloneUrl: extra.cloneUrl,
    knownHosts: extra.knownHosts,
    createdAt: row.created_at.toISOString(),
    expiresAt: row.expires_at.toISOString(),
    revokedAt: row.revoked_at?.toISOString() ?? null,
    revokeReason: row.revoke_reason,
    binding: (row.binding as KeyBinding | null) ?? null,
    failureReason: row.failure_reason,
    vault: row.vault_path ? { mount: extra.vaultMount, path: row.vault_path, ...roleOf(row) } : null,
  };
}
