// GitHub Apps on the stand-in's other faces: under `/api/v3` as a GitHub Enterprise Server serves
// them, with the headers GitHub sends an installation (no OAuth scopes), `/user` closed to an
// installation, and `/rate_limit` reporting the caller's own identity.
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppInstallation, GithubApp } from '../../sandbox/github/app-registry.ts';
import { type GithubStandIn, startGithubStandIn } from '../../sandbox/github/stand-in.ts';
import { createHostState, type HostState } from '../../sandbox/shared/host-state.ts';
import { expectGithubSchema, failure, quiet, sshPublicKey } from '../support/github-apps.ts';

const PAT = 'ghp_enterpriseSandboxAdmin';
let state: HostState;
let github: GithubStandIn;
let app: GithubApp;
let privateKey: string;
let acme: AppInstallation;

const appOctokit = (baseUrl: string, auth: Record<string, unknown> = {}) =>
  new Octokit({
    authStrategy: createAppAuth,
    auth: { appId: app.id, privateKey, ...auth },
    baseUrl,
    log: quiet,
  });
const tokenOctokit = (token: string) => new Octokit({ auth: token, baseUrl: github.url, log: quiet });

function installationToken(permissions?: Record<string, 'read' | 'write'>): string {
  const minted = github.apps.mintToken(acme, permissions ? { permissions } : {});
  if (!('token' in minted)) throw new Error(minted.message);
  return minted.token.token;
}

beforeAll(async () => {
  state = createHostState('github');
  for (const path of ['acme/widgets', 'globex/tools']) state.addRepository(path, `/srv/git/${path}.git`);
  github = await startGithubStandIn({ state, tokens: [PAT], sshHostKeys: () => [] });
  const registered = github.apps.registerApp({ name: 'Deploy Key Rotator' });
  app = registered.app;
  privateKey = registered.privateKeyPem!;
  acme = github.apps.install(app.id, { account: 'acme' });
});
afterAll(() => github.close());

describe('GitHub stand-in: Apps under /api/v3, as on a GitHub Enterprise Server', () => {
  it('serves the App, its installations and tokens there, with API URLs under /api/v3', async () => {
    const baseUrl = `${github.url}/api/v3`;
    const octokit = appOctokit(baseUrl);
    const self = await octokit.rest.apps.getAuthenticated();
    expectGithubSchema('/app', 'get', '200', self.data);
    expect(self.data!.html_url).toBe(`${github.url}/apps/deploy-key-rotator`);

    const { data: installation } = await octokit.rest.apps.getRepoInstallation({
      owner: 'acme',
      repo: 'widgets',
    });
    expectGithubSchema('/repos/{owner}/{repo}/installation', 'get', '200', installation);
    expect(installation.access_tokens_url).toBe(`${baseUrl}/app/installations/${acme.id}/access_tokens`);
    expect(installation.account).toMatchObject({
      url: `${baseUrl}/users/acme`,
      html_url: `${github.url}/acme`,
    });

    const created = await octokit.rest.apps.createInstallationAccessToken({
      installation_id: acme.id,
      repositories: ['widgets'],
    });
    expectGithubSchema('/app/installations/{installation_id}/access_tokens', 'post', '201', created.data);
    expect(created.data.repositories?.[0]).toMatchObject({
      url: `${baseUrl}/repos/acme/widgets`,
      html_url: `${github.url}/acme/widgets`,
    });
    const listed = await new Octokit({
      auth: created.data.token,
      baseUrl,
      log: quiet,
    }).rest.apps.listReposAccessibleToInstallation();
    expect(listed.data.repositories.map((repository) => repository.url)).toEqual([
      `${baseUrl}/repos/acme/widgets`,
    ]);
  });

  it('issues and revokes a deploy key as an installation through @octokit/auth-app there', async () => {
    const octokit = appOctokit(`${github.url}/api/v3`, { installationId: acme.id });
    const repo = { owner: 'acme', repo: 'widgets' };
    const created = await octokit.rest.repos.createDeployKey({
      ...repo,
      key: sshPublicKey(),
      read_only: true,
    });
    expect(created.data.url).toBe(`${github.url}/api/v3/repos/acme/widgets/keys/${created.data.id}`);
    await octokit.rest.repos.deleteDeployKey({ ...repo, key_id: created.data.id });
    expect(state.listKeys(state.findRepository('acme/widgets')!.id)).toEqual([]);
    const hidden = await failure(octokit.rest.repos.listDeployKeys({ owner: 'globex', repo: 'tools' }));
    expect(hidden.status).toBe(404);
  });
});

describe('GitHub stand-in: an installation among the account routes', () => {
  it('sends OAuth scopes to a personal token only, never to an App or an installation', async () => {
    const repo = { owner: 'acme', repo: 'widgets' };
    const personal = await tokenOctokit(PAT).rest.repos.listDeployKeys(repo);
    expect(personal.headers['x-oauth-scopes']).toContain('repo');
    const installation = await tokenOctokit(installationToken()).rest.repos.listDeployKeys(repo);
    expect(installation.headers['x-oauth-scopes']).toBeUndefined();
    expect(installation.headers['x-accepted-oauth-scopes']).toBeUndefined();
    const asApp = await appOctokit(github.url).rest.apps.getAuthenticated();
    expect(asApp.headers['x-oauth-scopes']).toBeUndefined();
  });

  it('refuses /user to an installation and lets metadata alone read a repository, not its keys', async () => {
    const reader = tokenOctokit(installationToken({ metadata: 'read' }));
    const user = await failure(reader.rest.users.getAuthenticated());
    expect([user.status, user.response.data.message]).toEqual([
      403,
      'Resource not accessible by integration',
    ]);
    expect((await reader.rest.repos.get({ owner: 'acme', repo: 'widgets' })).data.full_name).toBe(
      'acme/widgets',
    );
    expect((await failure(reader.rest.repos.get({ owner: 'globex', repo: 'tools' }))).status).toBe(404);
    const keys = await failure(reader.rest.repos.listDeployKeys({ owner: 'acme', repo: 'widgets' }));
    expect([keys.status, keys.response.data.message]).toEqual([
      403,
      'Resource not accessible by integration',
    ]);
  });

  it('reports on /rate_limit the standing of the installation that asks, not of another identity', async () => {
    const octokit = tokenOctokit(installationToken());
    const before = (await octokit.rest.rateLimit.get()).data.resources.core.used;
    await octokit.rest.repos.listDeployKeys({ owner: 'acme', repo: 'widgets' });
    await tokenOctokit(PAT).rest.repos.listDeployKeys({ owner: 'acme', repo: 'widgets' });
    const after = await octokit.rest.rateLimit.get();
    expect(after.data.resources.core.used).toBe(before + 1);
    expect(after.headers['x-ratelimit-used']).toBe(String(before + 1));
  });
});
