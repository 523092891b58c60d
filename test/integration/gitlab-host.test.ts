import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type GitlabStandIn, startGitlabStandIn } from '../../sandbox/gitlab/stand-in.ts';
import { createHostState, type HostState } from '../../sandbox/shared/host-state.ts';
import type { HostConfig } from '../../src/config.ts';
import { HostError } from '../../src/hosts/git-host.ts';
import { createGitlabHost, gitlabExpiresAt, gitlabInstanceUrl } from '../../src/hosts/gitlab.ts';
import type { HostAdapterDeps } from '../../src/hosts/host-http.ts';
import { createLogger } from '../../src/log.ts';
import { createMetrics, type Metrics } from '../../src/metrics.ts';
import { generateEd25519 } from '../support/git-client.ts';

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

function adapter(config: Partial<HostConfig> = {}, deps: Partial<HostAdapterDeps> = {}) {
  const metrics = createMetrics();
  const host = createGitlabHost(
    {
      id: 'gl',
      type: 'gitlab',
      apiUrl: standIn.url,
      sshUrl: 'ssh://git@127.0.0.1:2222',
      knownHosts: ['[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfTheGitlabStandIn'],
      token: TOKEN,
      ...config,
    },
    { metrics, logger: createLogger('silent'), retry: { maxRetries: 2, backoffBaseMs: 50 }, ...deps },
  );
  return { host, metrics };
}

async function statuses(metrics: Metrics): Promise<Record<string, number>> {
  const { values } = await metrics.hostRequests.get();
  return Object.fromEntries(values.map((v) => [String(v.labels.status), v.value]));
}

async function hostError(promise: Promise<unknown>): Promise<HostError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(HostError);
  return error as HostError;
}

const requests = () => standIn.faults.stats().total;
const inAnHour = () => new Date(Date.now() + 3_600_000 + 123);

describe('GitLab host adapter', () => {
  it('registers a key that cannot push and expires no earlier than ours, then deletes it once', async () => {
    const { host } = adapter();
    const { publicKey } = generateEd25519();
    const expiresAt = inAnHour();
    const added = await host.addDeployKey({
      repository: PROJECT,
      title: 'deploykey-rotator:test add',
      publicKey: `${publicKey} ci@example`,
      expiresAt,
      caller: 'token:test',
    });

    const [stored] = state.keysWithBlob(publicKey);
    expect(stored).toMatchObject({ readOnly: true, title: 'deploykey-rotator:test add' });
    expect(stored?.expiresAt?.getTime()).toBeGreaterThanOrEqual(expiresAt.getTime());
    expect(stored?.expiresAt?.getTime()).toBeLessThan(expiresAt.getTime() + 1_000);
    expect(added).toEqual({
      hostKeyId: String(stored?.id),
      title: 'deploykey-rotator:test add',
      publicKey,
      readOnly: true,
    });

    expect(await host.deleteDeployKey(PROJECT, added.hostKeyId)).toBe('deleted');
    expect(state.keysWithBlob(publicKey)).toEqual([]);
    expect(await host.deleteDeployKey(PROJECT, added.hostKeyId)).toBe('already-gone');
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

  it('answers a repeated add of the same key with the key already registered, not a second one', async () => {
    const { host } = adapter();
    const { publicKey } = generateEd25519();
    const input = {
      repository: PROJECT,
      title: 'deploykey-rotator:retried',
      publicKey,
      expiresAt: inAnHour(),
      caller: 'token:test',
    };
    const first = await host.addDeployKey(input);
    const again = await host.addDeployKey(input);
    expect(again).toEqual(first);
    expect(state.keysWithBlob(publicKey)).toHaveLength(1);
  });

  it('lists every key of a project across pages', async () => {
    const project = state.addRepository('acme/crowded', '/nonexistent');
    const ids = Array.from({ length: 120 }, (_, i) => {
      const key = state.addKey({
        repositoryId: project.id,
        title: `key ${i}`,
        key: generateEd25519().publicKey,
        readOnly: i % 2 === 0,
        expiresAt: null,
      });
      return String(key.id);
    });
    const { host } = adapter();
    const before = requests();
    const keys = await host.listDeployKeys('acme/crowded');
    expect(keys.map((key) => key.hostKeyId).sort()).toEqual(ids.sort());
    expect(keys.filter((key) => !key.readOnly)).toHaveLength(60);
    expect(requests() - before).toBe(2);
  });

  it('reports an unknown project as not-found and a bad token as unauthorized without retrying', async () => {
    const { host } = adapter();
    expect((await hostError(host.listDeployKeys('acme/missing'))).kind).toBe('not-found');

    const { host: stranger } = adapter({ token: 'glpat-wrong' });
    const before = requests();
    const error = await hostError(stranger.listDeployKeys(PROJECT));
    expect(error).toMatchObject({ kind: 'unauthorized', status: 401, retryable: false });
    expect(requests() - before).toBe(1);
  });

  it('passes GitLab’s reason along when it refuses a key', async () => {
    const { host } = adapter();
    const error = await hostError(
      host.addDeployKey({
        repository: PROJECT,
        title: 'deploykey-rotator:bad',
        publicKey: 'ssh-ed25519 not-a-key',
        expiresAt: inAnHour(),
        caller: 'token:test',
      }),
    );
    expect(error).toMatchObject({ kind: 'invalid', status: 400 });
    expect(error.message).toContain('deploy_key.key');
  });

  it('retries server errors and counts every answer in the host request metric', async () => {
    const { host, metrics } = adapter();
    standIn.faults.add({ status: 500, count: 2 });
    expect(await host.listDeployKeys(PROJECT)).toBeInstanceOf(Array);
    expect(await statuses(metrics)).toEqual({ '500': 2, '200': 1 });
  });

  it('gives up on a host that keeps failing after a bounded number of quick retries', async () => {
    const { host, metrics } = adapter();
    standIn.faults.add({ status: 502 });
    const started = Date.now();
    const error = await hostError(host.listDeployKeys(PROJECT));
    expect(error).toMatchObject({ kind: 'unavailable', status: 502, retryable: true });
    expect(await statuses(metrics)).toEqual({ '502': 3 });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('reports a dropped connection as unavailable and a silent host as a timeout', async () => {
    const { host, metrics } = adapter({}, { requestTimeoutMs: 200 });
    standIn.faults.add({ drop: true });
    expect((await hostError(host.listDeployKeys(PROJECT))).kind).toBe('unavailable');
    expect(await statuses(metrics)).toEqual({ network: 3 });

    standIn.faults.clear();
    standIn.faults.add({ latencyMs: 1_500, count: 1 });
    const before = requests();
    expect((await hostError(host.listDeployKeys(PROJECT))).kind).toBe('timeout');
    expect(requests() - before).toBe(1);
  });

  it('waits out GitLab’s throttle when Retry-After is short, then succeeds', async () => {
    standIn.setRateLimit({ requestsPerSecond: 1 });
    const { host, metrics } = adapter();
    await host.listDeployKeys(PROJECT);
    const started = Date.now();
    await host.listDeployKeys(PROJECT);
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    expect(await statuses(metrics)).toEqual({ '200': 2, '429': 1 });
  });

  it('fails fast as rate-limited when Retry-After is longer than we wait', async () => {
    const { host } = adapter();
    standIn.faults.add({
      status: 429,
      headers: { 'retry-after': '60', 'content-type': 'text/plain' },
      body: 'Retry later\n',
      count: 1,
    });
    const before = requests();
    const started = Date.now();
    const error = await hostError(host.listDeployKeys(PROJECT));
    expect(error).toMatchObject({
      kind: 'rate-limited',
      status: 429,
      retryAfterSeconds: 60,
      retryable: true,
    });
    expect(requests() - before).toBe(1);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('serves configured known_hosts lines, and refuses to guess them when none are configured', async () => {
    const { host } = adapter();
    expect(await host.knownHosts()).toEqual([
      '[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfTheGitlabStandIn',
    ]);
    const { host: unconfigured } = adapter({ knownHosts: undefined });
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
