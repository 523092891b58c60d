// The service's Vault client with its token: a static `VAULT_TOKEN`, or a session that logs in
// and renews (vault-login.ts). The container and the CLI both build it here.
import type { Logger } from 'pino';
import type { Clock, Timers } from '../time.ts';
import { VaultError } from './secret-store.ts';
import type { VaultAuthConfig } from './vault-auth-config.ts';
import { createVaultClient, staticToken, type VaultClient } from './vault-client.ts';
import { createVaultSession, DEFAULT_LOGIN_RETRY_MS } from './vault-login.ts';

export interface ServiceVaultConfig {
  addr: string;
  token?: string;
  auth: VaultAuthConfig;
  /** Per request; the client's default (5 s) when not given. */
  requestTimeoutSeconds?: number;
  /** Longest wait between failed logins; the session's default (5 s) when not given. */
  loginRetryMaxSeconds?: number;
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
  const timeout =
    config.requestTimeoutSeconds === undefined ? {} : { timeoutMs: config.requestTimeoutSeconds * 1000 };
  if (config.auth.method === 'token') {
    if (!config.token)
      throw new VaultError('invalid', 'VAULT_TOKEN is required with vault.auth.method token');
    return {
      client: createVaultClient({ addr: config.addr, token: staticToken(config.token), ...timeout }),
      start: async () => {},
      stop: () => {},
      check: () => {},
    };
  }
  const max = (config.loginRetryMaxSeconds ?? DEFAULT_LOGIN_RETRY_MS.max / 1000) * 1000;
  const retryMs = { initial: Math.min(DEFAULT_LOGIN_RETRY_MS.initial, max), max };
  return createVaultSession({ addr: config.addr, auth: config.auth, retryMs, ...timeout, ...deps });
}
