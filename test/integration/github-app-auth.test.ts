// The GitHub adapter acting as a GitHub App against the stand-in: installation looked up per owner,
// installation tokens renewed before they expire, the private key re-read when its file changes.
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GithubStandIn, type SeenRequest, startGithubStandIn } from '../../sandbox/github/stand-in.ts';
import { createHostState, type HostState } from '../../sandbox/shared/host-state.ts';
import type { HostConfig } from '../../src/config.ts';
import { keyTitle } from '../../src/hosts/git-host.ts';
import { generateEd25519 } from '../support/git-client.ts';
import { answersByStatus, hostError, testAdapter } from '../support/host-adapters.ts';

const INSTALLED = 'acme/models';
const NOT_INSTALLED = 'elsewhere/tools';

let standIn: GithubStandIn;
let state: HostState;
const repositoryIds: Record<string, number> = {};
let appId: number;
let privateKeyPem: string;
const seen: SeenRequest[] = [];
const dir = mkdtempSync(join(tmpdir(), 'github-app-auth-'));

beforeAll(async () => {
  state = createHostState('github');
  for (const path of [INSTALLED, NOT_INSTALLED])
    repositoryIds[path] = state.addRepository(path, '/nonexistent').id;
  standIn = await startGithubStandIn({
    state,
    tokens: [],
    sshHostKeys: () => [generateEd25519().publicKey],
    onRequestSeen: (request) => seen.push(request),
  });
  const registered = standIn.apps.registerApp({ name: 'rotator-test' });
  appId = registered.app.id;
  privateKeyPem = registered.privateKeyPem!;
  standIn.apps.install(appId, { account: 'acme' });
});

afterAll(async () => {
  await standIn.close();
});

function writeKeyFile(name: string, pem: string): string {
  const path = join(dir, name);
  // As Kubernetes does: the new content appears whole, under the same name.
  writeFileSync(`${path}.tmp`, pem, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
  return path;
}

function appAdapter(privateKeyFile: string) {
  const config: HostConfig = {
    id: 'gh-app',
    type: 'github',
    apiUrl: standIn.url,
    sshUrl: 'ssh://git@127.0.0.1:2222',
    token: '',
    credential: { type: 'app', appId, privateKey: { file: privateKeyFile } },
  };
  return testAdapter(config);
}

const newKey = (n: number) => ({
  repository: INSTALLED,
  title: keyTitle(`00000000-0000-4000-8000-${String(n).padStart(12, '0')}`, `job-${n}`),
  publicKey: generateEd25519().publicKey,
  expiresAt: new Date(Date.now() + 60_000),
  caller: 'test',
});

const count = (pattern: RegExp) => seen.filter((request) => pattern.test(request.url)).length;

describe('GitHub App authentication', () => {
  it('adds, lists and deletes a key on a repository of an owner the App is installed on', async () => {
    const { host } = appAdapter(writeKeyFile('issue.pem', privateKeyPem));
    await host.checkAccess(INSTALLED);
    const added = await host.addDeployKey(newKey(1));
    expect(added.readOnly).toBe(true);
    expect((await host.listDeployKeys(INSTALLED)).map((key) => key.hostKeyId)).toContain(added.hostKeyId);
    expect(await host.deleteDeployKey(INSTALLED, added.hostKeyId)).toBe('deleted');
    expect(state.listKeys(repositoryIds[INSTALLED]!)).toEqual([]);
    // Every request reached the stand-in as the installation, with a `ghs_` token.
    const keyRequests = seen.filter((request) => request.url.includes('/keys'));
    expect(
      keyRequests.every((request) => String(request.headers.authorization).startsWith('token ghs_')),
    ).toBe(true);
  });

  it('refuses an owner the App is not installed on with app-not-installed, sending no write', async () => {
    const { host } = appAdapter(writeKeyFile('missing.pem', privateKeyPem));
    const writesBefore = seen.filter(
      (request) => request.method === 'POST' && request.url.includes('/keys'),
    ).length;
    const refusal = await hostError(host.checkAccess(NOT_INSTALLED));
    expect(refusal.kind).toBe('app-not-installed');
    expect(refusal.code).toBe('host-app-not-installed');
    expect((await hostError(host.addDeployKey({ ...newKey(2), repository: NOT_INSTALLED }))).kind).toBe(
      'app-not-installed',
    );
    expect(seen.filter((request) => request.method === 'POST' && request.url.includes('/keys')).length).toBe(
      writesBefore,
    );
    expect(state.listKeys(repositoryIds[NOT_INSTALLED]!)).toEqual([]);
  });

  it('looks the installation up once per owner', async () => {
    const { host } = appAdapter(writeKeyFile('lookup.pem', privateKeyPem));
    const before = count(/\/repos\/acme\/[^/]+\/installation$/);
    await host.listDeployKeys(INSTALLED);
    await host.listDeployKeys(INSTALLED);
    await host.checkAccess(INSTALLED);
    expect(count(/\/repos\/acme\/[^/]+\/installation$/) - before).toBe(1);
  });

  it('renews an installation token that expires mid-run, with no failed request', async () => {
    standIn.apps.setTokenTtl(2);
    try {
      const { host, metrics } = appAdapter(writeKeyFile('renew.pem', privateKeyPem));
      const mintedBefore = count(/\/access_tokens$/);
      const minted = () => count(/\/access_tokens$/) - mintedBefore;
      // Requests go on until a third 2 s token has been minted, each one made while the last was in use.
      const giveUpAt = Date.now() + 20_000;
      for (let n = 10; minted() < 3 && Date.now() < giveUpAt; n++) {
        const added = await host.addDeployKey(newKey(n));
        await host.deleteDeployKey(INSTALLED, added.hostKeyId);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(minted(), 'tokens minted of 2 s tokens').toBeGreaterThanOrEqual(3);
      const answers = await answersByStatus(metrics);
      expect(answers['401'] ?? 0).toBe(0);
      expect(Object.keys(answers).every((status) => /^2/.test(status))).toBe(true);
    } finally {
      standIn.apps.setTokenTtl(3_600);
    }
  });

  it('picks up a private key replaced on disk without a restart', async () => {
    const other = standIn.apps.registerApp({ name: 'some-other-app' }).privateKeyPem!;
    const path = writeKeyFile('rotated.pem', other);
    const { host } = appAdapter(path);
    expect((await hostError(host.checkAccess(INSTALLED))).kind).toBe('unauthorized');
    writeKeyFile('rotated.pem', privateKeyPem);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await host.checkAccess(INSTALLED);
    const added = await host.addDeployKey(newKey(99));
    expect(await host.deleteDeployKey(INSTALLED, added.hostKeyId)).toBe('deleted');
  });
});
