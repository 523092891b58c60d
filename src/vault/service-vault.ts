// The service's Vault client with its token: a static `VAULT_TOKEN`, or a session that logs in
// and renews (vault-login.ts). The container and the CLI both build it here.
import type { Logger } from 'pino';
import type { Clock, Timers } from '../time.ts';
import { VaultError } from './secret-store.ts';
import type { VaultAuthConfig } from './vault-auth-config.ts';
import { createVaultClient, staticToken, type VaultClient } from './vault-client.ts';
import { createVaultSession } from './vault-login.ts';

export interface ServiceVaultConfig {
  addr: string;
  token?: string;
  auth: VaultAuthConfig;
}

export interface ServiceVault {
  client: VaultClient;
  start(): Promise<void>;
  stop(): void;
  /** Readiness `vault-auth`: throws while no valid token is held. */
  check(): void;
}

export function createServiceVault(
  config: ServiceVaultConfig,
  deps: { clock: Clock; timers: Timers; logger: Logger },
): ServiceVault {
  if (config.auth.method === 'token') {
    if (!config.token)
      throw new VaultError('invalid', 'VAULT_TOKEN is required with vault.auth.method token');
    return {
      client: createVaultClient({ addr: config.addr, token: staticToken(config.token) }),
      start: async () => {},
      stop: () => {},
      check: () => {},
    };
  }
  return createVaultSession({ addr: config.addr, auth: config.auth, ...deps });
}
