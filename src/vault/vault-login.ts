// The service's own Vault session: logs in with Kubernetes, AppRole or JWT auth, renews the token
// (`auth/token/renew-self`) at half its lease, well before 2/3 of it, and logs in again when a
// renewal is refused, the max TTL caps the lease, or the token was revoked behind its back. While
// Vault auth is down it keeps retrying with backoff; requests meanwhile fail as in any Vault outage
// ('unavailable'), which the revoke queue already retries. No token or credential is ever logged.
import type { Logger } from 'pino';
import { type FileSecret, fileSecret } from '../file-secret.ts';
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

/** What one session keeps between its timer steps. */
interface SessionState {
  options: VaultSessionOptions;
  retry: { initial: number; max: number };
  credential: FileSecret;
  client: VaultClient;
  held?: Held | undefined;
  loggingIn?: Promise<boolean> | undefined;
  cancelTimer?: () => void;
  failures: number;
  stopped: boolean;
  /** Pending lookup-self checks, one per refused token. */
  checking: Map<string, Promise<boolean>>;
}

const nowMs = (state: SessionState) => state.options.clock().getTime();
const validHeld = (state: SessionState) =>
  state.held && nowMs(state) < state.held.expiresAtMs ? state.held : undefined;

function schedule(state: SessionState, ms: number, step: (state: SessionState) => Promise<void>) {
  state.cancelTimer?.();
  if (state.stopped) return;
  state.cancelTimer = state.options.timers.after(Math.max(ms, 50), () => void step(state));
}

const backoff = (state: SessionState) =>
  Math.min(state.retry.initial * 2 ** Math.min(state.failures++, 20), state.retry.max);

function hold(state: SessionState, answer: ReturnType<typeof readAuth>, fullTtlSeconds: number) {
  state.held = {
    token: answer.token,
    expiresAtMs: nowMs(state) + answer.ttl * 1000,
    fullTtlSeconds,
    renewable: answer.renewable,
  };
  state.failures = 0;
  // A lease that cannot be renewed is replaced by a new login at 2/3 of it.
  schedule(state, answer.ttl * 1000 * (answer.renewable ? 0.5 : 2 / 3), answer.renewable ? renew : relogin);
}

async function loginOnce(state: SessionState): Promise<boolean> {
  const { auth, logger } = state.options;
  const secret = state.credential.value();
  try {
    const answer = readAuth(
      await state.client.write(`auth/${auth.mount ?? auth.method}/login`, loginBody(auth, secret), {
        what: `login (${auth.method})`,
        anonymous: true,
        sensitive: [secret],
      }),
      'login',
    );
    hold(state, answer, answer.ttl);
    logger.info({ method: auth.method, ttlSeconds: answer.ttl }, 'logged in to Vault');
    return true;
  } catch (error) {
    logger.warn({ method: auth.method, err: (error as Error).message }, 'Vault login failed; retrying');
    const current = validHeld(state);
    const wait = backoff(state);
    schedule(state, current ? Math.min(wait, (current.expiresAtMs - nowMs(state)) / 4) : wait, relogin);
    return false;
  } finally {
    state.loggingIn = undefined;
  }
}

/** One login at a time: concurrent callers share the login in flight. */
function logIn(state: SessionState): Promise<boolean> {
  state.loggingIn ??= loginOnce(state);
  return state.loggingIn;
}

async function relogin(state: SessionState) {
  await logIn(state);
}

async function renew(state: SessionState): Promise<void> {
  const current = validHeld(state);
  if (!current) return relogin(state);
  try {
    const answer = readAuth(
      await state.client.write(
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
    if (answer.ttl < current.fullTtlSeconds) return relogin(state);
    hold(state, answer, current.fullTtlSeconds);
  } catch (error) {
    const refused = error instanceof VaultError && error.kind !== 'unavailable' && error.kind !== 'timeout';
    state.options.logger.warn(
      { err: (error as Error).message },
      refused ? 'Vault refused renewal; logging in again' : 'Vault token renewal failed; retrying',
    );
    if (refused) return relogin(state);
    schedule(state, Math.min(backoff(state), (current.expiresAtMs - nowMs(state)) / 4), renew);
  }
}

// A 403 on a token we thought valid: it was revoked, or a policy denies the path. lookup-self tells.
function whenRefused(state: SessionState, token: string): Promise<boolean> {
  if (state.held?.token !== token) return Promise.resolve(validHeld(state) !== undefined);
  const pending =
    state.checking.get(token) ??
    state.client
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
          state.options.logger.warn('Vault no longer accepts the service token; logging in again');
          if (state.held?.token === token) state.held = undefined;
          if (await logIn(state)) return true;
          // The request failed for want of a token, as in any Vault outage: callers retry.
          throw new VaultError('unavailable', 'Vault auth: the service holds no valid token');
        },
      )
      .finally(() => state.checking.delete(token));
  state.checking.set(token, pending);
  return pending;
}

function tokenSource(state: SessionState): VaultTokenSource {
  return Object.assign(
    async () => {
      const current = validHeld(state) ?? ((await logIn(state)) ? validHeld(state) : undefined);
      if (!current) throw new VaultError('unavailable', 'Vault auth: the service holds no valid token');
      return current.token;
    },
    { refused: (token: string) => whenRefused(state, token) },
  );
}

export const DEFAULT_LOGIN_RETRY_MS = { initial: 500, max: 5_000 };

export function createVaultSession(options: VaultSessionOptions): VaultSession {
  const { auth, clock, logger } = options;
  const credential = fileSecret(credentialFile(auth), {
    clock,
    onError: (error) =>
      logger.warn({ err: error.message }, 'Vault login credential file unreadable; using the last one'),
  });
  // The client is set just below: it needs the token source, which needs this state.
  const state = {
    options,
    retry: options.retryMs ?? DEFAULT_LOGIN_RETRY_MS,
    credential,
    failures: 0,
    stopped: false,
    checking: new Map(),
  } as Omit<SessionState, 'client'> as SessionState;
  state.client = createVaultClient({
    addr: options.addr,
    token: tokenSource(state),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });

  return {
    client: state.client,
    async start() {
      state.stopped = false;
      await logIn(state);
    },
    stop() {
      state.stopped = true;
      state.cancelTimer?.();
    },
    check() {
      if (!validHeld(state)) throw new Error('the service holds no valid Vault token');
    },
  };
}
