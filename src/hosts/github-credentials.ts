// The `authorization` header for each GitHub request: a token, or for a GitHub App the token of
// its installation on the repository's owner. Installations are looked up once per owner;
// installation tokens are cached until a quarter of their lifetime is left and minted again then,
// so no request goes out with a token about to expire. Secrets from files are re-read on change.
import { createAppAuth } from '@octokit/auth-app';
import type { RequestInterface } from '@octokit/types';
import type { HostConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Clock } from '../time.ts';
import { HostError } from './git-host.ts';
import { hostTokenReader, secretReader } from './host-token.ts';

export interface GithubCredentials {
  /** The `authorization` header for a request on this repository. */
  forRepository(owner: string, repo: string): Promise<string>;
  /** For requests on no repository (`GET /meta`): the token, or none for an App. */
  forHost(): string | undefined;
  /** Fails with `app-not-installed` when an App cannot act on the repository. */
  checkAccess(owner: string, repo: string): Promise<void>;
  /**
   * GitHub turned down the credential of a request on this owner (401): an App uninstalled there
   * revokes its tokens, so the owner's installation is looked up again on the next request.
   */
  rejected(owner: string): void;
}

interface CredentialContext {
  config: HostConfig;
  request: RequestInterface;
  clock: Clock;
  logger: Logger;
}

// Longest margin kept before an installation token's expiry (GitHub's tokens live one hour).
const MAX_RENEW_MARGIN_MS = 5 * 60_000;
// How long an owner without the App is believed to stay so: in a pool of Apps every write on that
// owner would otherwise look it up again for the Apps not installed there.
export const NOT_INSTALLED_TTL_MS = 60_000;

/**
 * auth-app's token cache, but an entry is dropped once its token is near expiry by our clock
 * (auth-app's own keeps a token 59 minutes whatever its lifetime). '' is auth-app's "not cached".
 */
function expiringTokenCache(clock: Clock) {
  const entries = new Map<string, string>();
  return {
    /** Drops the tokens of an installation (auth-app's keys start with its id). */
    forget(installationId: number) {
      for (const key of entries.keys()) if (key.split('|')[0] === String(installationId)) entries.delete(key);
    },
    get(key: string): string {
      const entry = entries.get(key);
      if (!entry) return '';
      const [, createdAt = '', expiresAt = ''] = entry.split('|');
      const lifetime = Date.parse(expiresAt) - Date.parse(createdAt);
      const margin = Math.min(MAX_RENEW_MARGIN_MS, Math.max(0, lifetime) / 4);
      if (!(Date.parse(expiresAt) - clock().getTime() > margin)) {
        entries.delete(key);
        return '';
      }
      return entry;
    },
    set(key: string, value: string) {
      entries.set(key, value);
    },
  };
}

/** auth-app signing as the App with its current private key. */
function appSigner(context: CredentialContext, appId: number, key: () => string) {
  const { request, clock } = context;
  let current:
    | { key: string; auth: ReturnType<typeof createAppAuth>; cache: ReturnType<typeof expiringTokenCache> }
    | undefined;
  return {
    auth() {
      const privateKey = key();
      // A new key (rotated on disk) gets a fresh signer; tokens minted with the old one stay valid.
      if (current?.key !== privateKey) {
        const cache = expiringTokenCache(clock);
        current = { key: privateKey, auth: createAppAuth({ appId, privateKey, request, cache }), cache };
      }
      return current.auth;
    },
    forgetTokens(installationId: number) {
      current?.cache.forget(installationId);
    },
  };
}

/** Which installation of the App acts on each owner, looked up once and shared. */
function installationDirectory(
  context: CredentialContext,
  app: { appId: number; installationId?: number },
  signer: ReturnType<typeof appSigner>,
) {
  const { config, request, clock } = context;
  const installations = new Map<string, Promise<number>>();
  const notInstalledUntil = new Map<string, number>();

  // GitHub answers 404 for a repository that does not exist as for an owner without the App; the
  // owner's own installation tells the two apart (organization first, then user account).
  const lookups = (owner: string, repo: string) => [
    { route: 'GET /repos/{owner}/{repo}/installation', params: { owner, repo } },
    { route: 'GET /orgs/{org}/installation', params: { org: owner } },
    { route: 'GET /users/{username}/installation', params: { username: owner } },
  ];

  const lookUp = async (owner: string, repo: string): Promise<number | undefined> => {
    const { token } = await signer.auth()({ type: 'app' });
    for (const { route, params } of lookups(owner, repo)) {
      try {
        const answer = await request(route, { ...params, headers: { authorization: `bearer ${token}` } });
        return (answer.data as { id: number }).id;
      } catch (error) {
        if ((error as { status?: number }).status !== 404) throw error;
      }
    }
    return undefined;
  };

  const notInstalled = (owner: string) =>
    new HostError(config.id, 'app-not-installed', `GitHub App ${app.appId} is not installed on ${owner}`, {
      status: 404,
    });

  return {
    notInstalled,
    // Concurrent first requests on one owner share one lookup; a failed lookup is not remembered.
    installationOf(owner: string, repo: string): Promise<number> {
      if (app.installationId !== undefined) return Promise.resolve(app.installationId);
      const key = owner.toLowerCase();
      if ((notInstalledUntil.get(key) ?? 0) > clock().getTime()) return Promise.reject(notInstalled(owner));
      const known = installations.get(key);
      if (known) return known;
      const lookup = lookUp(owner, repo).then((found) => {
        if (found !== undefined) return found;
        notInstalledUntil.set(key, clock().getTime() + NOT_INSTALLED_TTL_MS);
        throw notInstalled(owner);
      });
      installations.set(key, lookup);
      lookup.catch(() => installations.delete(key));
      return lookup;
    },
    /** The owner's installation is looked up again, and its tokens minted anew. */
    forget(owner: string) {
      const known = installations.get(owner.toLowerCase());
      installations.delete(owner.toLowerCase());
      void known?.then(
        (id) => signer.forgetTokens(id),
        () => {},
      );
    },
  };
}

function appCredentials(
  context: CredentialContext,
  app: { appId: number; installationId?: number },
  key: () => string,
) {
  const signer = appSigner(context, app.appId, key);
  const directory = installationDirectory(context, app, signer);
  const mint = async (owner: string, repo: string) => {
    const installationId = await directory.installationOf(owner, repo);
    return (await signer.auth()({ type: 'installation', installationId })).token;
  };
  const isTokenNotFound = (error: unknown) =>
    (error as { status?: number }).status === 404 && !(error instanceof HostError);

  return {
    installationOf: directory.installationOf,
    forget: directory.forget,
    async tokenFor(owner: string, repo: string) {
      try {
        return await mint(owner, repo);
      } catch (error) {
        // GitHub answers 404 for the tokens of an installation removed since it was looked up. That
        // is no answer about the repository or its keys (a revoke would take the key for gone): the
        // installation is looked up again, under which a reinstalled App has a new id.
        if (!isTokenNotFound(error)) throw error;
        if (app.installationId !== undefined) throw directory.notInstalled(owner);
        directory.forget(owner);
      }
      try {
        return await mint(owner, repo);
      } catch (error) {
        throw isTokenNotFound(error) ? directory.notInstalled(owner) : error;
      }
    },
  };
}

export function createGithubCredentials(context: CredentialContext): GithubCredentials {
  const credential = context.config.credential;
  if (credential?.type !== 'app') {
    const token = hostTokenReader(context);
    return {
      forRepository: async () => `token ${token()}`,
      forHost: () => `token ${token()}`,
      checkAccess: async () => {},
      rejected: () => {},
    };
  }
  const key = secretReader(credential.privateKey, context.clock, context.logger);
  const app = appCredentials(context, credential, key);
  return {
    forRepository: async (owner, repo) => `token ${await app.tokenFor(owner, repo)}`,
    forHost: () => undefined,
    checkAccess: async (owner, repo) => {
      await app.installationOf(owner, repo);
    },
    rejected: (owner) => app.forget(owner),
  };
}
