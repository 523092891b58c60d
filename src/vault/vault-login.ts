// The service's own Vault session: logs in with Kubernetes, AppRole or JWT auth, renews the token
// (`auth/token/renew-self`) at half its lease, well before 2/3 of it, and logs in again when a
// renewal is refused, the max TTL caps the lease, or the token was revoked behind its back. While
// Vault auth is down it keeps retrying with backoff; requests meanwhile fail as in any Vault outage
// ('unavailable'), which the revoke queue already retries. No token or credential is ever logged.
import type { Logger } from 'pino';
import { fileSecret } from '../file-secret.ts';
import type { Clock, Timers } from '../time.ts';
import { VaultError } from './secret-store.ts';
import { DEFAULT_SERVICE_ACCOUNT_TOKEN_FILE, type VaultAuthConfig } from './vault-auth-config.ts';
import { createVaultClient, type VaultClient, type VaultTokenSource } from './vault-client.ts';

export type VaultLoginConfig = Exclude<VaultAuthConfig, { method: 'token' }>;

export interface VaultSessionOptions {
  addr: string;
  auth: VaultLoginConfig;
  clock: Clock;
  timers: Timers;
  logger: Logger;
  timeoutMs?: number;
  /** First and longest wait between failed logins or renewals; default 500 and 5000. */
  retryMs?: { initial: number; max: number };
}

export interface VaultSession {
  /** The one Vault client, its token from this session. */
  client: VaultClient;
  /** Logs in (once; failures are retried in the background) and keeps the token renewed. */
  start(): Promise<void>;
  stop(): void;
  /** Readiness: throws while the session holds no valid token. */
  check(): void;
}

interface Held {
  token: string;
  expiresAtMs: number;
  /** The lease a login gave; a renewal granting less means the max TTL is near. */
  fullTtlSeconds: number;
  renewable: boolean;
}

interface AuthAnswer {
  auth?: { client_token?: unknown; lease_duration?: unknown; renewable?: unknown };
}

function loginBody(auth: VaultLoginConfig, credential: string): Record<string, string> {
  if (auth.method === 'approle') return { role_id: auth.roleId, secret_id: credential };
  return { role: auth.role, jwt: credential };
}

function credentialFile(auth: VaultLoginConfig): string {
  if (auth.method === 'approle') return auth.secretIdFile;
  if (auth.method === 'jwt') return auth.jwtFile;
  return auth.tokenFile ?? DEFAULT_SERVICE_ACCOUNT_TOKEN_FILE;
}

function readAuth(
  answer: unknown,
  what: string,
): Omit<Held, 'expiresAtMs' | 'fullTtlSeconds'> & { ttl: number } {
  const auth = (answer as AuthAnswer | null)?.auth;
  const token = auth?.client_token;
  const ttl = auth?.lease_duration;
  if (typeof token !== 'string' || token === '' || typeof ttl !== 'number') {
    throw new VaultError('invalid', `Vault ${what} answered without a token`);
  }
  return { token, ttl, renewable: auth?.renewable === true };
}

export function createVaultSession(options: VaultSessionOptions): VaultSession {
  const { auth, clock, timers, logger } = options;
  const retry = options.retryMs ?? { initial: 500, max: 5_000 };
  const credential = fileSecret(credentialFile(auth), {
    clock,
    onError: (error) =>
      logger.warn({ err: error.message }, 'Vault login credential file unreadable; using the last one'),
  });
  let held: Held | undefined;
  let loggingIn: Promise<boolean> | undefined;
  let cancelTimer: (() => void) | undefined;
  let failures = 0;
  let stopped = false;

  const now = () => clock().getTime();
  const valid = () => (held && now() < held.expiresAtMs ? held : undefined);

  const source: VaultTokenSource = Object.assign(
    async () => {
      const current = valid() ?? ((await logIn()) ? valid() : undefined);
      if (!current) throw new VaultError('unavailable', 'Vault auth: the service holds no valid token');
      return current.token;
    },
    { refused: (token: string) => whenRefused(token) },
  );
  const client = createVaultClient({ addr: options.addr, token: source, timeoutMs: options.timeoutMs });

  const schedule = (ms: number, step: () => Promise<void>) => {
    cancelTimer?.();
    if (stopped) return;
    cancelTimer = timers.after(Math.max(ms, 50), () => void step());
  };
  const backoff = () => Math.min(retry.initial * 2 ** Math.min(failures++, 20), retry.max);

  const hold = (answer: ReturnType<typeof readAuth>, fullTtlSeconds: number) => {
    held = {
      token: answer.token,
      expiresAtMs: now() + answer.ttl * 1000,
      fullTtlSeconds,
      renewable: answer.renewable,
    };
    failures = 0;
    // A lease that cannot be renewed is replaced by a new login at 2/3 of it.
    schedule(answer.ttl * 1000 * (answer.renewable ? 0.5 : 2 / 3), answer.renewable ? renew : relogin);
  };

  function logIn(): Promise<boolean> {
    loggingIn ??= (async () => {
      const secret = credential.value();
      try {
        const answer = readAuth(
          await client.write(`auth/${auth.mount ?? auth.method}/login`, loginBody(auth, secret), {
            what: `login (${auth.method})`,
            anonymous: true,
            sensitive: [secret],
          }),
          'login',
        );
        hold(answer, answer.ttl);
        logger.info({ method: auth.method, ttlSeconds: answer.ttl }, 'logged in to Vault');
        return true;
      } catch (error) {
        logger.warn({ method: auth.method, err: (error as Error).message }, 'Vault login failed; retrying');
        const current = valid();
        const wait = backoff();
        schedule(current ? Math.min(wait, (current.expiresAtMs - now()) / 4) : wait, relogin);
        return false;
      } finally {
        loggingIn = undefined;
      }
    })();
    return loggingIn;
  }

  async function relogin() {
    await logIn();
  }

  async function renew() {
    const current = valid();
    if (!current) return relogin();
    try {
      const answer = readAuth(
        await client.write(
          'auth/token/renew-self',
          { increment: `${current.fullTtlSeconds}s` },
          {
            what: 'token renewal',
            anonymous: true,
            headers: { 'X-Vault-Token': current.token },
            sensitive: [current.token],
          },
        ),
        'token renewal',
      );
      // Capped below the lease a login gives: the max TTL is near, so log in again while still valid.
      if (answer.ttl < current.fullTtlSeconds) return relogin();
      hold(answer, current.fullTtlSeconds);
    } catch (error) {
      const refused = error instanceof VaultError && error.kind !== 'unavailable' && error.kind !== 'timeout';
      logger.warn(
        { err: (error as Error).message },
        refused ? 'Vault refused renewal; logging in again' : 'Vault token renewal failed; retrying',
      );
      if (refused) return relogin();
      schedule(Math.min(backoff(), (current.expiresAtMs - now()) / 4), renew);
    }
  }

  // A 403 on a token we thought valid: it was revoked, or a policy denies the path. lookup-self tells.
  const checking = new Map<string, Promise<boolean>>();
  function whenRefused(token: string): Promise<boolean> {
    if (held?.token !== token) return Promise.resolve(valid() !== undefined);
    const pending =
      checking.get(token) ??
      client
        .read('auth/token/lookup-self', {
          what: 'token lookup',
          anonymous: true,
          headers: { 'X-Vault-Token': token },
          sensitive: [token],
        })
        .then(
          () => false,
          async (error: unknown) => {
            if (!(error instanceof VaultError && error.status === 403)) return false;
            logger.warn('Vault no longer accepts the service token; logging in again');
            if (held?.token === token) held = undefined;
            if (await logIn()) return true;
            // The request failed for want of a token, as in any Vault outage: callers retry.
            throw new VaultError('unavailable', 'Vault auth: the service holds no valid token');
          },
        )
        .finally(() => checking.delete(token));
    checking.set(token, pending);
    return pending;
  }

  return {
    client,
    async start() {
      stopped = false;
      await logIn();
    },
    stop() {
      stopped = true;
      cancelTimer?.();
    },
    check() {
      if (!valid()) throw new Error('the service holds no valid Vault token');
    },
  };
}
