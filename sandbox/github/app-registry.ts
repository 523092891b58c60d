// GitHub Apps of the GitHub stand-in: apps and their keys, installations on an owner with a
// repository selection, and the installation access tokens minted for them, which expire on the
// stand-in's clock.
import { createPublicKey, type KeyObject, randomBytes } from 'node:crypto';
import type { HostState, SandboxRepository } from '../shared/host-state.ts';
import { rsaKeyPair } from '../shared/rsa-keys.ts';

export type PermissionLevel = 'read' | 'write';
export type Permissions = Record<string, PermissionLevel>;
export type AccountType = 'Organization' | 'User';

export interface GithubAccount {
  login: string;
  id: number;
  type: AccountType;
}

export interface GithubApp {
  id: number;
  slug: string;
  name: string;
  clientId: string;
  owner: GithubAccount;
  permissions: Permissions;
  publicKey: KeyObject;
  createdAt: Date;
}

export interface AppInstallation {
  id: number;
  app: GithubApp;
  account: GithubAccount;
  repositorySelection: 'all' | 'selected';
  /** The selected repositories; unused when the selection is `all`. */
  repositoryIds: number[];
  permissions: Permissions;
  createdAt: Date;
}

export interface InstallationToken {
  token: string;
  installation: AppInstallation;
  expiresAtMs: number;
  permissions: Permissions;
  /** Set when the token was narrowed to some repositories at creation. */
  repositoryIds?: number[];
}

export interface RegisterAppInput {
  name?: string;
  slug?: string;
  /** Login of the account that owns the App; default the sandbox's admin user. */
  owner?: string;
  permissions?: Permissions;
  /** A public key (SPKI or PKCS#1 PEM) whose private half the caller keeps; default: one is generated. */
  publicKeyPem?: string;
}

export interface InstallInput {
  /** The user or organization the App is installed on. */
  account: string;
  accountType?: AccountType;
  /** Repository names to select; omitted = every repository of the account. */
  repositories?: string[];
}

export interface TokenRequest {
  repositories?: string[];
  repositoryIds?: number[];
  permissions?: Permissions;
}

export type MintResult = { token: InstallationToken } | { status: number; message: string };

export interface AppRegistry {
  /** The generated private key (PKCS#1 PEM, as GitHub hands it out) unless a public key was given. */
  registerApp(input?: RegisterAppInput): { app: GithubApp; privateKeyPem?: string };
  install(appId: number, input: InstallInput): AppInstallation;
  /**
   * Uninstalls as the owner does from the installation's settings: the installation is gone (its id
   * is not found again) and every token minted for it stops working. False when there is none.
   */
  uninstall(installationId: number): boolean;
  /** By numeric id or by client id, as the JWT `iss` claim names an App. */
  findApp(issuer: string | number): GithubApp | undefined;
  installationsOf(app: GithubApp): AppInstallation[];
  installationForRepository(app: GithubApp, repository: SandboxRepository): AppInstallation | undefined;
  installationForAccount(app: GithubApp, login: string): AppInstallation | undefined;
  repositoriesOf(installation: AppInstallation): SandboxRepository[];
  mintToken(installation: AppInstallation, request: TokenRequest): MintResult;
  findToken(token: string): InstallationToken | undefined;
  /** The repositories an installation token reaches. */
  tokenRepositories(token: InstallationToken): SandboxRepository[];
  setTokenTtl(seconds: number): void;
}

export const DEFAULT_APP_PERMISSIONS: Permissions = { administration: 'write', metadata: 'read' };
// GitHub's installation access tokens live one hour.
const DEFAULT_TOKEN_TTL_SECONDS = 3600;
export const SANDBOX_APP_OWNER = 'sandbox-admin';

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const base62 = (length: number) => [...randomBytes(length)].map((byte) => BASE62[byte % 62]).join('');
// Real ids are large and increasing; a random start keeps two sandboxes from sharing one.
const idSequence = (base: number) => {
  let next = base + Math.floor(Math.random() * 1_000_000);
  return () => next++;
};

export const ownerOf = (repository: SandboxRepository) => repository.path.split('/')[0] ?? '';
export const nameOf = (repository: SandboxRepository) => repository.path.split('/').slice(1).join('/');
const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** A token may carry at most what its installation was granted. */
export function permissionsCover(granted: Permissions, requested: Permissions): boolean {
  return Object.entries(requested).every(([name, level]) => {
    const has = granted[name];
    return has === 'write' || (has === 'read' && level === 'read');
  });
}

export function createAppRegistry(opts: {
  state: HostState;
  now: () => number;
  tokenTtlSeconds?: number | undefined;
}): AppRegistry {
  const { state, now } = opts;
  let tokenTtlSeconds = opts.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
  const apps = new Map<number, GithubApp>();
  const installations = new Map<number, AppInstallation>();
  const tokens = new Map<string, InstallationToken>();
  const accounts = new Map<string, GithubAccount>();
  const nextAppId = idSequence(100_000);
  const nextInstallationId = idSequence(10_000_000);
  const nextAccountId = idSequence(1_000_000);

  const account = (login: string, type: AccountType = 'Organization') => {
    const key = login.toLowerCase();
    let found = accounts.get(key);
    if (!found) {
      found = { login, id: nextAccountId(), type };
      accounts.set(key, found);
    }
    return found;
  };

  const repositoriesOf = (installation: AppInstallation) =>
    state
      .listRepositories()
      .filter((repository) => same(ownerOf(repository), installation.account.login))
      .filter(
        (repository) =>
          installation.repositorySelection === 'all' || installation.repositoryIds.includes(repository.id),
      );

  const narrowTo = (installation: AppInstallation, request: TokenRequest): number[] | undefined => {
    const names = request.repositories ?? [];
    const ids = request.repositoryIds ?? [];
    // GitHub treats an empty list as no narrowing at all.
    if (names.length === 0 && ids.length === 0) return undefined;
    const reachable = repositoriesOf(installation);
    const chosen = new Set<number>();
    for (const name of names) {
      const found = reachable.find((repository) => same(nameOf(repository), name));
      if (!found) return [];
      chosen.add(found.id);
    }
    for (const id of ids) {
      if (!reachable.some((repository) => repository.id === id)) return [];
      chosen.add(id);
    }
    return [...chosen];
  };

  return {
    registerApp(input = {}) {
      const id = nextAppId();
      const slug = input.slug ?? input.name?.toLowerCase().replace(/[^a-z0-9]+/g, '-') ?? `sandbox-app-${id}`;
      let publicKey: KeyObject;
      let privateKeyPem: string | undefined;
      if (input.publicKeyPem) {
        publicKey = createPublicKey(input.publicKeyPem);
      } else {
        const pair = rsaKeyPair();
        publicKey = pair.publicKey;
        privateKeyPem = pair.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
      }
      const app: GithubApp = {
        id,
        slug,
        name: input.name ?? slug,
        clientId: `Iv23li${base62(14)}`,
        owner: account(input.owner ?? SANDBOX_APP_OWNER, input.owner ? 'Organization' : 'User'),
        permissions: { ...(input.permissions ?? DEFAULT_APP_PERMISSIONS) },
        publicKey,
        createdAt: new Date(now()),
      };
      apps.set(id, app);
      return privateKeyPem ? { app, privateKeyPem } : { app };
    },
    install(appId, input) {
      const app = apps.get(appId);
      if (!app) throw new Error(`no GitHub App ${appId}`);
      const owner = account(input.account, input.accountType);
      const selected = (input.repositories ?? []).map((name) => {
        const repository = state.findRepository(`${owner.login}/${name}`);
        if (!repository) throw new Error(`no repository ${owner.login}/${name}`);
        return repository.id;
      });
      const installation: AppInstallation = {
        id: nextInstallationId(),
        app,
        account: owner,
        repositorySelection: input.repositories ? 'selected' : 'all',
        repositoryIds: selected,
        permissions: { ...app.permissions },
        createdAt: new Date(now()),
      };
      installations.set(installation.id, installation);
      return installation;
    },
    uninstall(installationId) {
      if (!installations.delete(installationId)) return false;
      for (const [value, token] of tokens) {
        if (token.installation.id === installationId) tokens.delete(value);
      }
      return true;
    },
    findApp(issuer) {
      if (typeof issuer === 'number' || /^\d+$/.test(issuer)) return apps.get(Number(issuer));
      return [...apps.values()].find((app) => app.clientId === issuer);
    },
    installationsOf: (app) => [...installations.values()].filter((entry) => entry.app.id === app.id),
    installationForRepository(app, repository) {
      return [...installations.values()].find(
        (entry) =>
          entry.app.id === app.id && repositoriesOf(entry).some((found) => found.id === repository.id),
      );
    },
    installationForAccount(app, login) {
      return [...installations.values()].find(
        (entry) => entry.app.id === app.id && same(entry.account.login, login),
      );
    },
    repositoriesOf,
    mintToken(installation, request) {
      const repositoryIds = narrowTo(installation, request);
      if (repositoryIds?.length === 0) {
        return {
          status: 422,
          message:
            'There is at least one repository that does not exist or is not accessible to the parent installation.',
        };
      }
      if (request.permissions && !permissionsCover(installation.permissions, request.permissions)) {
        return { status: 422, message: 'The permissions requested are not granted to this installation.' };
      }
      const token: InstallationToken = {
        token: `ghs_${base62(36)}`,
        installation,
        expiresAtMs: now() + tokenTtlSeconds * 1000,
        permissions: { ...(request.permissions ?? installation.permissions) },
        ...(repositoryIds ? { repositoryIds } : {}),
      };
      tokens.set(token.token, token);
      return { token };
    },
    findToken: (token) => tokens.get(token),
    tokenRepositories(token) {
      const reachable = repositoriesOf(token.installation);
      const narrowed = token.repositoryIds;
      return narrowed ? reachable.filter((repository) => narrowed.includes(repository.id)) : reachable;
    },
    setTokenTtl(seconds) {
      tokenTtlSeconds = seconds;
    },
  };
}
