// Starts every stand-in the service talks to: GitHub, GitLab and Gitea (REST + SSH git) and Vault,
// with the demo repositories in place. Postgres and Redis stay real and are not started here.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGiteaDeployKeys } from './gitea/deploy-keys.ts';
import { giteaSshMessages } from './gitea/ssh-messages.ts';
import { type GiteaStandIn, startGiteaStandIn } from './gitea/stand-in.ts';
import { type GithubStandIn, startGithubStandIn } from './github/stand-in.ts';
import { type GitlabStandIn, startGitlabStandIn } from './gitlab/stand-in.ts';
import { type KubernetesStandIn, startKubernetesStandIn } from './kubernetes/stand-in.ts';
import { type OidcStandIn, startOidcStandIn } from './oidc/stand-in.ts';
import { createHostState, type HostState } from './shared/host-state.ts';
import { createSandboxCa, type TlsIdentity } from './shared/tls.ts';
import { createSeededBareRepo } from './ssh/git-repos.ts';
import { type SshGitServer, startSshGitServer } from './ssh/git-server.ts';
import { startVaultStandIn, type VaultStandIn } from './vault/stand-in.ts';

export const DEMO_REPOSITORIES = ['acme/models', 'acme/datasets'];

export interface HostStandIn<T> {
  api: T;
  state: HostState;
  ssh: SshGitServer;
  token: string;
}

/** The GitHub App the sandbox registers and installs on `acme`: what a service needs to act as it. */
export interface SandboxGithubApp {
  id: number;
  clientId: string;
  slug: string;
  /** The App's private key (PEM, mode 0600) in the sandbox's data directory. */
  privateKeyPath: string;
  installationId: number;
}

export interface StandIns {
  github: HostStandIn<GithubStandIn> & { app: SandboxGithubApp };
  gitlab: HostStandIn<GitlabStandIn>;
  gitea: HostStandIn<GiteaStandIn>;
  vault: VaultStandIn & { token: string; mount: string };
  oidc: OidcStandIn;
  /** The Kubernetes API; `token` is the controller's bearer token, also in `kubeconfigPath`. */
  kubernetes: KubernetesStandIn & { api: string; token: string };
  /** The Ed25519 pair that signs audit checkpoints (the service gets the private half). */
  auditSigningKey: { privateKeyPem: string; publicKeyPem: string };
  repositories: string[];
  dataDir: string;
  /** With `tls: true`: the CA that signed the stand-ins' HTTPS certificate, as PEM and as a file. */
  tls?: { caCertPem: string; caFile: string };
  close(): Promise<void>;
}

const secret = (prefix: string) => `${prefix}${randomBytes(18).toString('base64url')}`;

export interface StandInsOptions {
  repositories?: string[];
  /** Also serve GitHub, GitLab and Vault over HTTPS, with a CA made for this run. */
  tls?: boolean;
  /** Webhook deliveries GitHub and GitLab each send at once (default 4). */
  deliveryConcurrency?: number;
}

async function sandboxTls(dataDir: string) {
  const ca = createSandboxCa();
  const caFile = join(dataDir, 'sandbox-ca.pem');
  await writeFile(caFile, ca.certPem);
  return { identity: ca.issueServerIdentity(), caCertPem: ca.certPem, caFile };
}

export async function startStandIns(options: StandInsOptions = {}): Promise<StandIns> {
  const repositories = options.repositories ?? DEMO_REPOSITORIES;
  const dataDir = await mkdtemp(join(tmpdir(), 'deploykey-sandbox-'));
  const closers: (() => Promise<void>)[] = [() => rm(dataDir, { recursive: true, force: true })];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch(() => {});
  };

  try {
    const githubState = createHostState('github');
    const gitlabState = createHostState('gitlab');
    const giteaState = createHostState('gitea');
    for (const repository of repositories) {
      githubState.addRepository(repository, await createSeededBareRepo(join(dataDir, 'github'), repository));
      gitlabState.addRepository(repository, await createSeededBareRepo(join(dataDir, 'gitlab'), repository));
      giteaState.addRepository(repository, await createSeededBareRepo(join(dataDir, 'gitea'), repository));
    }

    const tls = options.tls ? await sandboxTls(dataDir) : undefined;
    const https: { tls?: TlsIdentity } = tls ? { tls: tls.identity } : {};

    const githubSsh = await startSshGitServer({ state: githubState });
    closers.push(() => githubSsh.close());
    const gitlabSsh = await startSshGitServer({ state: gitlabState });
    closers.push(() => gitlabSsh.close());
    // The Gitea API and its SSH side share the deploy-key records, so SSH messages name the key as Gitea does.
    const giteaKeys = createGiteaDeployKeys(giteaState);
    const giteaSsh = await startSshGitServer({
      state: giteaState,
      messages: giteaSshMessages(giteaState, giteaKeys),
    });
    closers.push(() => giteaSsh.close());

    const oidc = await startOidcStandIn();
    closers.push(() => oidc.close());

    const githubToken = secret('ghp_');
    const github = await startGithubStandIn({
      state: githubState,
      tokens: [githubToken],
      sshHostKeys: () => [githubSsh.hostPublicKey],
      sshCloneUrl: (path) => githubSsh.cloneUrl(path),
      mintIdToken: (claims) => oidc.mint('github-actions', claims),
      deliveryConcurrency: options.deliveryConcurrency,
      ...https,
    });
    closers.push(() => github.close());
    const githubApp = await installSandboxApp(github, dataDir);

    const gitlabToken = secret('glpat-');
    const gitlab = await startGitlabStandIn({
      state: gitlabState,
      tokens: [gitlabToken],
      sshCloneUrl: (path) => gitlabSsh.cloneUrl(path),
      mintIdToken: (claims) => oidc.mint('gitlab-ci', claims),
      deliveryConcurrency: options.deliveryConcurrency,
      ...https,
    });
    closers.push(() => gitlab.close());

    // Gitea tokens are 40 hexadecimal characters.
    const giteaToken = randomBytes(20).toString('hex');
    const gitea = await startGiteaStandIn({
      state: giteaState,
      tokens: [giteaToken],
      keys: giteaKeys,
      ssh: { host: giteaSsh.host, port: giteaSsh.port },
    });
    closers.push(() => gitea.close());

    // Vault's Kubernetes auth trusts the same issuer that mints the sandbox's Kubernetes tokens.
    const vaultToken = secret('hvs.');
    const vault = await startVaultStandIn({
      rootToken: vaultToken,
      kubernetes: { publicKeysPem: [oidc.publicKeyPem()] },
      ...https,
    });
    closers.push(() => vault.close());

    // Pods' service account tokens come from the same issuer, so Vault's Kubernetes auth accepts them.
    const kubernetesToken = secret('sandbox-k8s-');
    const kubernetes = await startKubernetesStandIn({
      tokens: [kubernetesToken],
      kubeconfigDir: dataDir,
      mintServiceAccountToken: (claims, { audience, expiresInSeconds }) =>
        oidc.mint('kubernetes', claims, { audience, expiresInSeconds }),
    });
    closers.push(() => kubernetes.close());

    const auditPair = generateKeyPairSync('ed25519');
    const auditSigningKey = {
      privateKeyPem: auditPair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      publicKeyPem: auditPair.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    };

    return {
      oidc,
      auditSigningKey,
      github: { api: github, state: githubState, ssh: githubSsh, token: githubToken, app: githubApp },
      gitlab: { api: gitlab, state: gitlabState, ssh: gitlabSsh, token: gitlabToken },
      gitea: { api: gitea, state: giteaState, ssh: giteaSsh, token: giteaToken },
      vault: { ...vault, token: vaultToken, mount: 'secret' },
      kubernetes: Object.assign(kubernetes, { api: kubernetes.url, token: kubernetesToken }),
      repositories,
      dataDir,
      ...(tls ? { tls: { caCertPem: tls.caCertPem, caFile: tls.caFile } } : {}),
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

// The recommended production setup authenticates as a GitHub App, so the sandbox has one.
async function installSandboxApp(github: GithubStandIn, dataDir: string): Promise<SandboxGithubApp> {
  const { app, privateKeyPem } = github.apps.registerApp({ name: 'deploykey-rotator-sandbox' });
  const privateKeyPath = join(dataDir, 'github-app.private-key.pem');
  await writeFile(privateKeyPath, privateKeyPem!, { mode: 0o600 });
  const installation = github.apps.install(app.id, { account: 'acme' });
  return {
    id: app.id,
    clientId: app.clientId,
    slug: app.slug,
    privateKeyPath,
    installationId: installation.id,
  };
}

export const SANDBOX_OIDC_ISSUER_ID = 'sandbox-oidc';

/**
 * The sandbox's access policy: a CI workflow gets keys only for its own repository, the
 * `training/trainer` Kubernetes service account for any `acme/*` repository (through Vault only),
 * and the demo API tokens (`sandbox-ci-…`) for the demo repositories.
 */
export const SANDBOX_POLICY = [
  {
    name: 'github-actions-own-repository',
    match: { issuer: SANDBOX_OIDC_ISSUER_ID, claims: { repository: '*/*', workflow: '**' } },
    // A CI job clones with the key it is handed (`deploykey issue`), so it may take it in the response.
    allow: {
      providers: ['github'],
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a policy template, filled from the token's claims
      repositories: ['${repository}'],
      maxTtlSeconds: 3_600,
      deliveries: ['response', 'vault', 'wrapped'],
    },
  },
  {
    name: 'gitlab-ci-own-project',
    match: { issuer: SANDBOX_OIDC_ISSUER_ID, claims: { project_path: '**', namespace_path: '**' } },
    allow: {
      providers: ['gitlab'],
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a policy template, filled from the token's claims
      repositories: ['${project_path}'],
      maxTtlSeconds: 3_600,
      deliveries: ['response', 'vault', 'wrapped'],
    },
  },
  {
    name: 'kubernetes-training-jobs',
    match: {
      issuer: SANDBOX_OIDC_ISSUER_ID,
      claims: { 'kubernetes.io.namespace': 'training', 'kubernetes.io.serviceaccount.name': 'trainer' },
    },
    allow: { providers: ['*'], repositories: ['acme/*'], maxTtlSeconds: 86_400, maxActiveKeys: 50 },
  },
  {
    name: 'sandbox-ci-token',
    match: { issuer: 'api-token', token: 'sandbox-ci-*' },
    allow: {
      providers: ['*'],
      repositories: ['acme/models', 'acme/datasets'],
      deliveries: ['vault', 'response', 'wrapped'],
    },
  },
];

/** The sandbox's OIDC issuer and policy, for tests that want the sandbox's own rules. */
export function sandboxAuthConfig(standIns: StandIns) {
  return {
    auth: { oidcIssuers: [{ id: SANDBOX_OIDC_ISSUER_ID, issuer: standIns.oidc.issuer }] },
    policy: SANDBOX_POLICY,
  };
}

// The stand-ins limit nothing unless a test sets a limit, so the service's budget is no limit either.
export const STAND_IN_WRITES = {
  concurrency: 32,
  minIntervalMs: 0,
  requestsPerMinute: 600_000,
  maxQueueSeconds: 30,
};

/** The service's view of the stand-ins: its config file's host list and the credentials it needs. */
export function serviceSettingsFor(standIns: StandIns) {
  const sshUrl = (ssh: SshGitServer) => `ssh://git@${ssh.host}:${ssh.port}`;
  return {
    ...sandboxAuthConfig(standIns),
    hosts: [
      {
        id: 'github',
        type: 'github',
        apiUrl: standIns.github.api.url,
        sshUrl: sshUrl(standIns.github.ssh),
        // The recommended setup: the service acts as the GitHub App installed on `acme`.
        auth: {
          type: 'app',
          appId: standIns.github.app.id,
          privateKeyFile: standIns.github.app.privateKeyPath,
        },
        writes: STAND_IN_WRITES,
      },
      {
        id: 'gitlab',
        type: 'gitlab',
        apiUrl: standIns.gitlab.api.url,
        sshUrl: sshUrl(standIns.gitlab.ssh),
        knownHosts: standIns.gitlab.ssh.knownHostsLines,
        writes: STAND_IN_WRITES,
      },
      {
        id: 'gitea',
        type: 'gitea',
        apiUrl: standIns.gitea.api.apiUrl,
        sshUrl: sshUrl(standIns.gitea.ssh),
        knownHosts: standIns.gitea.ssh.knownHostsLines,
        writes: STAND_IN_WRITES,
      },
    ],
    env: {
      VAULT_ADDR: standIns.vault.addr,
      VAULT_TOKEN: standIns.vault.token,
      DEPLOYKEY_HOST_GITHUB_TOKEN: standIns.github.token,
      DEPLOYKEY_HOST_GITLAB_TOKEN: standIns.gitlab.token,
      DEPLOYKEY_HOST_GITEA_TOKEN: standIns.gitea.token,
      DEPLOYKEY_AUDIT_SIGNING_KEY: standIns.auditSigningKey.privateKeyPem,
    },
  };
}
