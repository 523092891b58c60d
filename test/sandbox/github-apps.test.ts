import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/rest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AppInstallation, GithubApp } from '../../sandbox/github/app-registry.ts';
import { githubTime } from '../../sandbox/github/responses.ts';
import { type GithubStandIn, startGithubStandIn } from '../../sandbox/github/stand-in.ts';
import { createHostState, type HostState } from '../../sandbox/shared/host-state.ts';
import { expectGithubSchema, failure, quiet, sshPublicKey } from '../support/github-apps.ts';

let clock: number;
let state: HostState;
let github: GithubStandIn;
let app: GithubApp;
let privateKey: string;
let acme: AppInstallation;
let octoUser: AppInstallation;

/** Authenticated as the App itself, or as one of its installations, as @octokit/auth-app's README shows. */
const appOctokit = (auth: Record<string, unknown> = {}) =>
  new Octokit({
    authStrategy: createAppAuth,
    auth: { appId: app.id, privateKey, ...auth },
    baseUrl: github.url,
    log: quiet,
  });
const tokenOctokit = (token: string) => new Octokit({ auth: token, baseUrl: github.url, log: quiet });

beforeEach(async () => {
  clock = Date.now();
  state = createHostState('github');
  for (const path of [
    'acme/widgets',
    'acme/gadgets',
    'globex/tools',
    'octo-user/dotfiles',
    'octo-user/notes',
  ]) {
    state.addRepository(path, `/srv/git/${path}.git`);
  }
  github = await startGithubStandIn({
    state,
    tokens: ['ghp_sandboxAdmin'],
    sshHostKeys: () => [],
    now: () => clock,
  });
  const registered = github.apps.registerApp({ name: 'Deploy Key Rotator' });
  app = registered.app;
  privateKey = registered.privateKeyPem!;
  acme = github.apps.install(app.id, { account: 'acme' });
  octoUser = github.apps.install(app.id, {
    account: 'octo-user',
    accountType: 'User',
    repositories: ['dotfiles'],
  });
});
afterEach(() => github.close());

describe('GitHub stand-in: a GitHub App and its installations', () => {
  it('hands out a PKCS#1 private key, as GitHub does, that @octokit/auth-app signs with', async () => {
    expect(privateKey).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    const { data } = await appOctokit().rest.apps.getAuthenticated();
    expectGithubSchema('/app', 'get', '200', data);
    expect(data).toMatchObject({
      id: app.id,
      slug: 'deploy-key-rotator',
      client_id: app.clientId,
      installations_count: 2,
    });
    expect(data!.permissions).toEqual({ administration: 'write', metadata: 'read' });
  });

  it('lists and reads the installations, each with its account and repository selection', async () => {
    const octokit = appOctokit();
    const listed = await octokit.rest.apps.listInstallations();
    expect(listed.data.map((entry) => [entry.account?.login, entry.repository_selection])).toEqual([
      ['acme', 'all'],
      ['octo-user', 'selected'],
    ]);
    const { data } = await octokit.rest.apps.getInstallation({ installation_id: acme.id });
    expectGithubSchema('/app/installations/{installation_id}', 'get', '200', data);
    expect(data).toMatchObject({ id: acme.id, app_id: app.id, target_type: 'Organization' });
    expect(data.access_tokens_url).toBe(`${github.url}/app/installations/${acme.id}/access_tokens`);
    const missing = await failure(octokit.rest.apps.getInstallation({ installation_id: acme.id + 1000 }));
    expect(missing.status).toBe(404);
  });

  it('finds the installation of a repository, an organization and a user', async () => {
    const octokit = appOctokit();
    const repo = await octokit.rest.apps.getRepoInstallation({ owner: 'acme', repo: 'widgets' });
    expectGithubSchema('/repos/{owner}/{repo}/installation', 'get', '200', repo.data);
    expect(repo.data.id).toBe(acme.id);
    expect((await octokit.rest.apps.getOrgInstallation({ org: 'ACME' })).data.id).toBe(acme.id);
    expect((await octokit.rest.apps.getUserInstallation({ username: 'octo-user' })).data.id).toBe(
      octoUser.id,
    );
    // An organization is a user on /users/…; a user is no organization.
    expect((await octokit.rest.apps.getUserInstallation({ username: 'acme' })).data.id).toBe(acme.id);
    expect((await failure(octokit.rest.apps.getOrgInstallation({ org: 'octo-user' }))).status).toBe(404);
  });

  it('answers 404 for a repository the App is not installed on, as GitHub does', async () => {
    const octokit = appOctokit();
    for (const [owner, repo] of [
      ['globex', 'tools'],
      ['octo-user', 'notes'],
      ['acme', 'no-such-repo'],
    ] as const) {
      const missing = await failure(octokit.rest.apps.getRepoInstallation({ owner, repo }));
      expect(missing.status).toBe(404);
      expect(missing.response.data).toEqual({
        message: 'Not Found',
        documentation_url:
          'https://docs.github.com/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app',
        status: '404',
      });
    }
  });
});

describe('GitHub stand-in: installation access tokens', () => {
  it('mints a token for one hour with the installation’s permissions and repository selection', async () => {
    const created = await appOctokit().rest.apps.createInstallationAccessToken({ installation_id: acme.id });
    expect(created.status).toBe(201);
    expectGithubSchema('/app/installations/{installation_id}/access_tokens', 'post', '201', created.data);
    expect(created.data).toEqual({
      token: expect.stringMatching(/^ghs_[A-Za-z0-9]{36}$/),
      expires_at: githubTime(new Date(clock + 3600_000)),
      permissions: { administration: 'write', metadata: 'read' },
      repository_selection: 'all',
    });

    const octokit = tokenOctokit(created.data.token);
    const listed = await octokit.rest.apps.listReposAccessibleToInstallation();
    expectGithubSchema('/installation/repositories', 'get', '200', listed.data);
    expect(listed.data.repositories.map((repo) => repo.full_name)).toEqual(['acme/widgets', 'acme/gadgets']);
    expect((await octokit.rest.repos.listDeployKeys({ owner: 'acme', repo: 'widgets' })).status).toBe(200);
    const other = await failure(octokit.rest.repos.listDeployKeys({ owner: 'globex', repo: 'tools' }));
    expect(other.status).toBe(404);
    // A personal access token is no installation.
    const pat = await failure(tokenOctokit('ghp_sandboxAdmin').rest.apps.listReposAccessibleToInstallation());
    expect(pat.status).toBe(403);
  });

  it('narrows a token to some repositories and permissions, and refuses more than was granted', async () => {
    const octokit = appOctokit();
    const narrowed = await octokit.rest.apps.createInstallationAccessToken({
      installation_id: acme.id,
      repositories: ['widgets'],
      permissions: { administration: 'read' },
    });
    expectGithubSchema('/app/installations/{installation_id}/access_tokens', 'post', '201', narrowed.data);
    expect(narrowed.data.repository_selection).toBe('selected');
    expect(narrowed.data.repositories?.map((repo) => repo.full_name)).toEqual(['acme/widgets']);
    expect(narrowed.data.permissions).toEqual({ administration: 'read' });

    const reader = tokenOctokit(narrowed.data.token);
    expect((await reader.rest.repos.listDeployKeys({ owner: 'acme', repo: 'widgets' })).status).toBe(200);
    expect((await failure(reader.rest.repos.listDeployKeys({ owner: 'acme', repo: 'gadgets' }))).status).toBe(
      404,
    );
    const write = await failure(
      reader.rest.repos.createDeployKey({ owner: 'acme', repo: 'widgets', key: sshPublicKey() }),
    );
    expect(write.status).toBe(403);
    expect(write.response.data.message).toBe('Resource not accessible by integration');

    const elsewhere = await failure(
      octokit.rest.apps.createInstallationAccessToken({ installation_id: acme.id, repositories: ['tools'] }),
    );
    expect([elsewhere.status, elsewhere.response.data.message]).toEqual([
      422,
      'There is at least one repository that does not exist or is not accessible to the parent installation.',
    ]);
    const malformed = await failure(
      octokit.request('POST /app/installations/{installation_id}/access_tokens', {
        installation_id: acme.id,
        repositories: 'widgets' as never,
      }),
    );
    expect([malformed.status, malformed.response.data.message]).toEqual([
      422,
      `Invalid request.\n\nFor 'properties/repositories', "widgets" is not an array.`,
    ]);
    const more = await failure(
      octokit.rest.apps.createInstallationAccessToken({
        installation_id: acme.id,
        permissions: { contents: 'write' },
      }),
    );
    expect([more.status, more.response.data.message]).toEqual([
      422,
      'The permissions requested are not granted to this installation.',
    ]);
  });

  it('issues and revokes a deploy key as an installation through @octokit/auth-app', async () => {
    const octokit = appOctokit({ installationId: acme.id });
    const created = await octokit.rest.repos.createDeployKey({
      owner: 'acme',
      repo: 'widgets',
      key: sshPublicKey(),
      read_only: true,
    });
    expect(created.status).toBe(201);
    expect(state.listKeys(state.findRepository('acme/widgets')!.id)).toHaveLength(1);
    await octokit.rest.repos.deleteDeployKey({ owner: 'acme', repo: 'widgets', key_id: created.data.id });
    expect(state.listKeys(state.findRepository('acme/widgets')!.id)).toHaveLength(0);

    // A repository left out of a selected installation stays out of reach.
    const user = appOctokit({ installationId: octoUser.id });
    expect((await user.rest.repos.listDeployKeys({ owner: 'octo-user', repo: 'dotfiles' })).status).toBe(200);
    expect(
      (await failure(user.rest.repos.listDeployKeys({ owner: 'octo-user', repo: 'notes' }))).status,
    ).toBe(404);
  });

  it('refuses an expired installation token with 401 Bad credentials', async () => {
    github.apps.setTokenTtl(60);
    const { data } = await appOctokit().rest.apps.createInstallationAccessToken({ installation_id: acme.id });
    expect(data.expires_at).toBe(githubTime(new Date(clock + 60_000)));
    const octokit = tokenOctokit(data.token);
    await octokit.rest.repos.listDeployKeys({ owner: 'acme', repo: 'widgets' });
    clock += 60_000;
    const expired = await failure(octokit.rest.repos.listDeployKeys({ owner: 'acme', repo: 'widgets' }));
    expect([expired.status, expired.response.data.message]).toEqual([401, 'Bad credentials']);
  });

  it('lets @octokit/auth-app renew a token that expired mid-run, with a cache that honours expires_at', async () => {
    github.apps.setTokenTtl(120);
    // auth-app's default cache keeps a token 59 minutes whatever its expires_at says.
    const entries = new Map<string, string>();
    const cache = {
      get: (key: string) => {
        const value = entries.get(key);
        const expiresAt = value === undefined ? 0 : Date.parse(value.split('|')[2]!);
        return expiresAt - 30_000 > clock ? value : undefined;
      },
      set: (key: string, value: string) => void entries.set(key, value),
    };
    const octokit = appOctokit({ installationId: acme.id, cache });
    const repo = { owner: 'acme', repo: 'widgets' };
    await octokit.rest.repos.listDeployKeys(repo);
    const first = [...entries.values()][0]!.split('|')[0];
    clock += 100_000;
    expect((await octokit.rest.repos.listDeployKeys(repo)).status).toBe(200);
    const second = [...entries.values()][0]!.split('|')[0];
    expect(second).not.toBe(first);
    clock += 20_000;
    // The first token is past its expiry now; the renewed one still works.
    expect((await failure(tokenOctokit(first!).rest.repos.listDeployKeys(repo))).status).toBe(401);
    expect((await tokenOctokit(second!).rest.repos.listDeployKeys(repo)).status).toBe(200);
  });
});
