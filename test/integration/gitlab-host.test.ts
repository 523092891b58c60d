// What only GitLab does: `expires_at` on each key, projects in nested groups, and no host keys in
// its API. The contract both host types keep is in host-adapter.test.ts.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type GitlabStandIn, startGitlabStandIn } from '../../sandbox/gitlab/stand-in.ts';
import { createHostState, type HostState } from '../../sandbox/shared/host-state.ts';
import type { HostConfig } from '../../src/config.ts';
import { gitlabExpiresAt, gitlabInstanceUrl } from '../../src/hosts/gitlab.transport.ts';
import { generateEd25519 } from '../support/git-client.ts';
import { hostError, testAdapter } from '../support/host-adapters.ts';

const TOKEN = 'glpat-0123456789abcdefghij';
const PROJECT = 'acme/models';
const NESTED = 'acme/research/vision/models';

let standIn: GitlabStandIn;
let state: HostState;

beforeAll(async () => {
  state = createHostState('gitlab');
  state.addRepository(PROJECT, '/nonexistent');
  state.addRepository(NESTED, '/nonexistent');
  standIn = await startGitlabStandIn({ state, tokens: [TOKEN] });
});

afterAll(async () => {
  await standIn.close();
});

beforeEach(() => {
  standIn.faults.clear();
  standIn.setRateLimit(undefined);
});

const hostConfig = (): HostConfig => ({
  id: 'gl',
  type: 'gitlab',
  apiUrl: standIn.url,
  sshUrl: 'ssh://git@127.0.0.1:2222',
  knownHosts: ['[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfTheGitlabStandIn'],
  token: TOKEN,
});

function adapter(config: Partial<HostConfig> = {}) {
  return testAdapter({ ...hostConfig(), ...config });
}

const inAnHour = () => new Date(Date.now() + 3_600_000 + 123);

describe('GitLab host adapter', () => {
  it('registers a key that cannot push and expires no earlier than ours, to the second', async () => {
    const { host } = adapter();
    const { publicKey } = generateEd25519();
    const expiresAt = inAnHour();
    await host.addDeployKey({
      repository: PROJECT,
      title: 'deploykey-rotator:expiring',
      publicKey,
      expiresAt,
      caller: 'c',
    });
    const [stored] = state.keysWithBlob(publicKey);
    expect(stored?.readOnly).toBe(true);
    expect(stored?.expiresAt?.getTime()).toBeGreaterThanOrEqual(expiresAt.getTime());
    expect(stored?.expiresAt?.getTime()).toBeLessThan(expiresAt.getTime() + 1_000);
  });

  it('addresses a project in nested groups by its full path, encoded once', async () => {
    const { host } = adapter();
    const { publicKey } = generateEd25519();
    const added = await host.addDeployKey({
      repository: NESTED,
      title: 'deploykey-rotator:nested',
      publicKey,
      expiresAt: inAnHour(),
      caller: 'token:test',
    });
    expect((await host.listDeployKeys(NESTED)).map((key) => key.hostKeyId)).toContain(added.hostKeyId);
    expect(await host.deleteDeployKey(NESTED, added.hostKeyId)).toBe('deleted');
  });

  it('serves configured known_hosts lines, and refuses to guess them when none are configured', async () => {
    const { host } = adapter();
    expect(await host.knownHosts()).toEqual([
      '[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfTheGitlabStandIn',
    ]);
    const { knownHosts: _configured, ...withoutKnownHosts } = hostConfig();
    const { host: unconfigured } = testAdapter(withoutKnownHosts);
    const error = await hostError(unconfigured.knownHosts());
    expect(error.kind).toBe('unavailable');
    expect(error.message).toContain('knownHosts');
  });

  it('builds SSH clone URLs and its API base from the configuration', () => {
    const { host } = adapter();
    expect(host.cloneUrl(NESTED)).toBe('ssh://git@127.0.0.1:2222/acme/research/vision/models.git');
    expect(gitlabInstanceUrl('https://gitlab.example.com/api/v4/')).toBe('https://gitlab.example.com');
    expect(gitlabExpiresAt(new Date('2030-01-02T03:04:05.001Z'))).toBe('2030-01-02T03:04:06Z');
    expect(gitlabExpiresAt(new Date('2030-01-02T03:04:05.000Z'))).toBe('2030-01-02T03:04:05Z');
  });
});
