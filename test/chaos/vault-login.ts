// The chaos run's services log in to the Vault stand-in with AppRole (5 s tokens within a 30 s
// max TTL, the service's own policy from deploy/vault/), and the fault "Vault token expired/
// revoked": their tokens are revoked behind their backs, once with every login down for a while.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StandIns } from '../../sandbox/stand-ins.ts';

export interface ChaosVaultLogin {
  auth: { method: 'approle'; roleId: string; secretIdFile: string };
  secretId: string;
}

async function vaultCall(
  standIns: StandIns,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ data?: Record<string, string> }> {
  const response = await fetch(`${standIns.vault.addr}/v1/${path}`, {
    method,
    headers: { 'x-vault-token': standIns.vault.token, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!response.ok) throw new Error(`Vault stand-in ${method} ${path}: ${response.status}`);
  return response.status === 204 ? {} : ((await response.json()) as { data?: Record<string, string> });
}

export async function setUpVaultLogin(standIns: StandIns, dir: string): Promise<ChaosVaultLogin> {
  const policy = await readFile(new URL('../../deploy/vault/deploykey-rotator.hcl', import.meta.url), 'utf8');
  await vaultCall(standIns, 'PUT', 'sys/policies/acl/svc-deploykey-rotator', { policy });
  await vaultCall(standIns, 'POST', 'auth/approle/role/deploykey-rotator', {
    token_ttl: '5s',
    token_max_ttl: '30s',
    token_policies: ['svc-deploykey-rotator'],
  });
  const roleId = (await vaultCall(standIns, 'GET', 'auth/approle/role/deploykey-rotator/role-id')).data
    ?.role_id as string;
  const secretId = (await vaultCall(standIns, 'POST', 'auth/approle/role/deploykey-rotator/secret-id', {}))
    .data?.secret_id as string;
  const secretIdFile = join(dir, 'vault-secret-id');
  await writeFile(secretIdFile, secretId, { mode: 0o600 });
  return { auth: { method: 'approle', roleId, secretIdFile }, secretId };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** At 30% of the run every service token is revoked; at 70% again, with logins down for 4 s. */
export async function revokeVaultTokens(
  standIns: StandIns,
  durationMs: number,
  log: { vaultTokensRevoked: number; vaultLoginDownMs: number },
): Promise<void> {
  await sleep(durationMs * 0.3);
  log.vaultTokensRevoked += standIns.vault.auth.revoke({ pathPrefix: 'auth/approle/' });
  await sleep(durationMs * 0.4);
  standIns.vault.auth.takeLoginDown('unavailable');
  log.vaultTokensRevoked += standIns.vault.auth.revoke({ pathPrefix: 'auth/approle/' });
  await sleep(4_000);
  standIns.vault.auth.takeLoginDown(undefined);
  log.vaultLoginDownMs += 4_000;
}
