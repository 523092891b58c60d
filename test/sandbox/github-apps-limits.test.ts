import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GithubStandIn, startGithubStandIn } from '../../sandbox/github/stand-in.ts';
import { createHostState } from '../../sandbox/shared/host-state.ts';
import { quiet, sshPublicKey } from '../support/github-apps.ts';

let github: GithubStandIn;
// Frozen: every write of a test falls in the same second of the stand-in's clock, however slow the machine.
const clock = Date.now();
const repo = { owner: 'acme', repo: 'widgets' };

/** An App installed on `acme`, authenticated as that installation through @octokit/auth-app. */
function installedApp(name: string): Octokit {
  const { app, privateKeyPem } = github.apps.registerApp({ name });
  const installation = github.apps.install(app.id, { account: 'acme' });
  return new Octokit({
    authStrategy: createAppAuth,
    auth: { appId: app.id, privateKey: privateKeyPem, installationId: installation.id },
    baseUrl: github.url,
    log: quiet,
  });
}

/** Sends `count` key creations one after another and returns each answer's status. */
async function writes(octokit: Octokit, count: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let index = 0; index < count; index++) {
    const answer = await octokit.rest.repos.createDeployKey({ ...repo, key: sshPublicKey() }).then(
      (response) => response.status,
      (error: { status: number }) => error.status,
    );
    statuses.push(answer);
  }
  return statuses;
}

beforeAll(async () => {
  const state = createHostState('github');
  state.addRepository('acme/widgets', '/srv/git/acme/widgets.git');
  github = await startGithubStandIn({
    state,
    tokens: ['ghp_sandboxAdmin'],
    sshHostKeys: () => [],
    now: () => clock,
  });
});
afterAll(() => github.close());

describe('GitHub stand-in: secondary write limits per identity', () => {
  it('gives each App installation its own write budget, so two Apps get twice the writes', async () => {
    const first = installedApp('rotator-one');
    const second = installedApp('rotator-two');
    // Tokens are minted before the limit applies, so only the key writes count.
    await first.rest.repos.listDeployKeys(repo);
    await second.rest.repos.listDeployKeys(repo);
    github.setRateLimit({ secondary: { writesPerSecond: 3 } });

    const [one, two] = await Promise.all([writes(first, 4), writes(second, 4)]);
    expect(one).toEqual([201, 201, 201, 403]);
    expect(two).toEqual([201, 201, 201, 403]);
    // A personal access token is a budget of its own as well.
    const user = new Octokit({ auth: 'ghp_sandboxAdmin', baseUrl: github.url, log: quiet });
    expect((await writes(user, 1))[0]).toBe(201);
  });

  it('counts every token of one installation against that installation', async () => {
    github.setRateLimit(undefined);
    const { app } = github.apps.registerApp({ name: 'rotator-tokens' });
    const installation = github.apps.install(app.id, { account: 'acme' });
    const tokens = [1, 2].map(() => {
      const minted = github.apps.mintToken(installation, {});
      if (!('token' in minted)) throw new Error(minted.message);
      return new Octokit({ auth: minted.token.token, baseUrl: github.url, log: quiet });
    });
    github.setRateLimit({ secondary: { writesPerSecond: 2 } });
    const statuses = [...(await writes(tokens[0]!, 1)), ...(await writes(tokens[1]!, 2))];
    expect(statuses).toEqual([201, 201, 403]);
  });
});
