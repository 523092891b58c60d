import { readFile, stat } from 'node:fs/promises';
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StandIns, startStandIns } from '../../sandbox/stand-ins.ts';
import { quiet, sshPublicKey } from '../support/github-apps.ts';

let standIns: StandIns;

beforeAll(async () => {
  standIns = await startStandIns();
});
afterAll(() => standIns.close());

describe('the sandbox’s GitHub App', () => {
  it('is installed on acme, with its private key in a file only its owner reads', async () => {
    const { app } = standIns.github;
    expect((await stat(app.privateKeyPath)).mode & 0o777).toBe(0o600);
    const octokit = new Octokit({
      authStrategy: createAppAuth,
      auth: { appId: app.id, privateKey: await readFile(app.privateKeyPath, 'utf8') },
      baseUrl: standIns.github.api.url,
      log: quiet,
    });
    for (const repo of ['models', 'datasets']) {
      const { data } = await octokit.rest.apps.getRepoInstallation({ owner: 'acme', repo });
      expect(data.id).toBe(app.installationId);
    }
  });

  it('lets the service issue and revoke a deploy key as the installation', async () => {
    const { app } = standIns.github;
    const octokit = new Octokit({
      authStrategy: createAppAuth,
      auth: {
        appId: app.id,
        privateKey: await readFile(app.privateKeyPath, 'utf8'),
        installationId: app.installationId,
      },
      baseUrl: standIns.github.api.url,
      log: quiet,
    });
    const key = sshPublicKey();
    const repo = { owner: 'acme', repo: 'models' };
    const created = await octokit.rest.repos.createDeployKey({
      ...repo,
      key,
      title: 'sandbox-app',
      read_only: true,
    });
    expect(created.status).toBe(201);
    await octokit.rest.repos.deleteDeployKey({ ...repo, key_id: created.data.id });
    expect((await octokit.rest.repos.listDeployKeys(repo)).data).toEqual([]);
  });
});
