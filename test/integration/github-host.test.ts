import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:net';
import sshpk from 'sshpk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { docs, metaBody, secondaryLimitMessage } from '../../sandbox/github/responses.ts';
import { type GithubStandIn, startGithubStandIn } from '../../sandbox/github/stand-in.ts';
import { createHostState, type HostState } from '../../sandbox/shared/host-state.ts';
import type { HostConfig } from '../../src/config.ts';
import { HostError } from '../../src/hosts/git-host.ts';
import { createGithubHost } from '../../src/hosts/github.ts';
import type { HostAdapterDeps } from '../../src/hosts/host-http.ts';
import { createHostRegistry } from '../../src/hosts/host-registry.ts';
import { createLogger } from '../../src/log.ts';
import { createMetrics, type Metrics } from '../../src/metrics.ts';
import { generateEd25519 } from '../support/git-client.ts';

const TOKEN = `ghp_${'a1B2'.repeat(9)}`;
const REPO = 'acme/models';

let standIn: GithubStandIn;
let state: HostState;
let hostKeys: string[];

beforeAll(async () => {
  state = createHostState('github');
  state.addRepository(REPO, '/nonexistent');
  hostKeys = [generateEd25519().publicKey];
  standIn = await startGithubStandIn({ state, tokens: [TOKEN], sshHostKeys: () => hostKeys });
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
  const host = createGithubHost(
    {
      id: 'gh',
      type: 'github',
      apiUrl: standIn.url,
      sshUrl: 'ssh://git@127.0.0.1:2222',
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

function ecdsaPublicKey(): string {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const [type, blob] = sshpk.parseKey(pem, 'pem').toString('ssh').split(' ');
  return `${type} ${blob}`;
}

const requests = () => standIn.faults.stats().total;

const secondaryLimit = (retryAfter: string) => ({
  status: 403,
  method: 'POST',
  headers: { 'retry-after': retryAfter },
  body: {
    message: secondaryLimitMessage('0000:000000:000000:000000:00000000'),
    documentation_url: docs.secondaryRateLimits,
  },
  count: 1,
});

describe('GitHub host adapter', () => {
  it('registers a key read-only, as GitHub stores it, and deletes it once', async () => {
    const { host } = adapter();
    const { publicKey } = generateEd25519();
    const added = await host.addDeployKey({
      repository: REPO,
      title: 'deploykey-rotator:test add',
      publicKey: `${publicKey} ci@example`,
      expiresAt: new Date(Date.now() + 3_600_000),
      caller: 'token:test',
    });

    const [stored] = state.keysWithBlob(publicKey);
    expect(stored).toMatchObject({ readOnly: true, title: 'deploykey-rotator:test add' });
    expect(added).toEqual({
      hostKeyId: String(stored?.id),
      title: 'deploykey-rotator:test add',
      publicKey,
      readOnly: true,
    });

    expect(await host.deleteDeployKey(REPO, added.hostKeyId)).toBe('deleted');
    expect(state.keysWithBlob(publicKey)).toEqual([]);
    expect(await host.deleteDeployKey(REPO, added.hostKeyId)).toBe('already-gone');
  });

  it('answers a repeated add of the same key with the key already registered, not a second one', async () => {
    const { host } = adapter();
    const { publicKey } = generateEd25519();
    const input = {
      repository: REPO,
      title: 'deploykey-rotator:retried',
      publicKey,
      expiresAt: new Date(Date.now() + 60_000),
      caller: 'token:test',
    };
    const first = await host.addDeployKey(input);
    const again = await host.addDeployKey(input);
    expect(again).toEqual(first);
    expect(state.keysWithBlob(publicKey)).toHaveLength(1);
  });

  it('lists every key of a repository across pages', async () => {
    const repository = state.addRepository('acme/crowded', '/nonexistent');
    const ids = Array.from({ length: 120 }, (_, i) => {
      const key = state.addKey({
        repositoryId: repository.id,
        title: `key ${i}`,
        key: generateEd25519().publicKey,
        readOnly: true,
        expiresAt: null,
      });
      return String(key.id);
    });
    const { host } = adapter();
    const before = requests();
    const keys = await host.listDeployKeys('acme/crowded');
    expect(keys.map((key) => key.hostKeyId).sort()).toEqual(ids.sort());
    expect(requests() - before).toBe(2);
  });

  it('reports a repository it cannot see as not-found, and a bad token as unauthorized without retrying', async () => {
    const { host } = adapter();
    expect((await hostError(host.listDeployKeys('acme/missing'))).kind).toBe('not-found');

    const { host: stranger } = adapter({ token: 'ghp_wrong' });
    const before = requests();
    const error = await hostError(stranger.listDeployKeys(REPO));
    expect(error).toMatchObject({ kind: 'unauthorized', status: 401, retryable: false });
    expect(requests() - before).toBe(1);
  });

  it('passes GitHub’s reason along when it refuses a key', async () => {
    const { host } = adapter();
    const error = await hostError(
      host.addDeployKey({
        repository: REPO,
        title: 'deploykey-rotator:bad',
        publicKey: 'ssh-ed25519 not-a-key',
        expiresAt: new Date(Date.now() + 60_000),
        caller: 'token:test',
      }),
    );
    expect(error).toMatchObject({ kind: 'invalid', status: 422 });
    expect(error.message).toContain('key is invalid');
  });

  it('retries server errors and counts every answer in the host request metric', async () => {
    const { host, metrics } = adapter();
    standIn.faults.add({ status: 500, count: 2 });
    expect(await host.listDeployKeys(REPO)).toBeInstanceOf(Array);
    expect(await statuses(metrics)).toEqual({ '500': 2, '200': 1 });
  });

  it('gives up on a host that keeps failing after a bounded number of quick retries', async () => {
    const { host, metrics } = adapter();
    standIn.faults.add({ status: 502 });
    const started = Date.now();
    const error = await hostError(host.listDeployKeys(REPO));
    expect(error).toMatchObject({ kind: 'unavailable', status: 502, retryable: true });
    expect(await statuses(metrics)).toEqual({ '502': 3 });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('reports a host it cannot connect to as unavailable', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));

    const { host, metrics } = adapter({ apiUrl: `http://127.0.0.1:${port}` });
    const error = await hostError(host.listDeployKeys(REPO));
    expect(error.kind).toBe('unavailable');
    expect(await statuses(metrics)).toEqual({ network: 3 });
  });

  it('times out a request that gets no answer, without retrying it', async () => {
    const { host, metrics } = adapter({}, { requestTimeoutMs: 200 });
    standIn.faults.add({ latencyMs: 1_500, count: 1 });
    const before = requests();
    const error = await hostError(host.listDeployKeys(REPO));
    expect(error.kind).toBe('timeout');
    expect(requests() - before).toBe(1);
    expect(await statuses(metrics)).toEqual({ timeout: 1 });
  });

  it('waits out a secondary rate limit that asks for a short pause, then succeeds', async () => {
    const { host } = adapter();
    standIn.faults.add(secondaryLimit('1'));
    const { publicKey } = generateEd25519();
    const started = Date.now();
    await host.addDeployKey({
      repository: REPO,
      title: 'deploykey-rotator:after limit',
      publicKey,
      expiresAt: new Date(Date.now() + 60_000),
      caller: 'token:test',
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(state.keysWithBlob(publicKey)).toHaveLength(1);
    expect(standIn.faults.stats().byStatus['403']).toBe(1);
  });

  it('fails fast as rate-limited when GitHub asks for a longer pause than we wait', async () => {
    const { host } = adapter();
    standIn.faults.add(secondaryLimit('30'));
    const before = requests();
    const started = Date.now();
    const error = await hostError(
      host.addDeployKey({
        repository: REPO,
        title: 'deploykey-rotator:limited',
        publicKey: generateEd25519().publicKey,
        expiresAt: new Date(Date.now() + 60_000),
        caller: 'token:test',
      }),
    );
    expect(error).toMatchObject({
      kind: 'rate-limited',
      status: 403,
      retryAfterSeconds: 30,
      retryable: true,
    });
    expect(requests() - before).toBe(1);
    expect(Date.now() - started).toBeLessThan(2_500);
  });

  it('reports an exhausted primary rate limit with the wait until its reset', async () => {
    standIn.setRateLimit({ limit: 1, windowSeconds: 3600 });
    const { host } = adapter();
    await host.listDeployKeys(REPO);
    const error = await hostError(host.listDeployKeys(REPO));
    expect(error.kind).toBe('rate-limited');
    expect(error.retryAfterSeconds).toBeGreaterThan(3500);
    expect(error.retryAfterSeconds).toBeLessThanOrEqual(3601);
  });

  it('derives known_hosts lines from /meta once and serves them from cache after', async () => {
    const { host } = adapter();
    const before = requests();
    const [first, second] = await Promise.all([host.knownHosts(), host.knownHosts()]);
    expect(first).toEqual([`[127.0.0.1]:2222 ${hostKeys[0]}`]);
    expect(second).toEqual(first);
    expect(requests() - before).toBe(1);

    expect(await host.knownHosts()).toEqual(first);
    expect(requests() - before).toBe(1);

    const { host: onDefaultPort } = adapter({ sshUrl: 'ssh://git@GitHub.com' });
    expect(await onDefaultPort.knownHosts()).toEqual([`github.com ${hostKeys[0]}`]);
  });

  it('drops a /meta key whose fingerprint does not match, and does not cache a failed read', async () => {
    const ed25519 = hostKeys[0]!;
    const ecdsa = ecdsaPublicKey();
    const meta = metaBody([ed25519, ecdsa]);
    const tampered = {
      ...meta,
      ssh_key_fingerprints: { ...meta.ssh_key_fingerprints, SHA256_ED25519: 'AAAA' },
    };
    standIn.faults.add({ status: 200, pathPrefix: '/meta', body: tampered, count: 1 });
    const { host } = adapter();
    expect(await host.knownHosts()).toEqual([`[127.0.0.1]:2222 ${ecdsa}`]);

    const allWrong = { ...meta, ssh_key_fingerprints: { SHA256_ED25519: 'AAAA', SHA256_ECDSA: 'AAAA' } };
    standIn.faults.add({ status: 200, pathPrefix: '/meta', body: allWrong, count: 1 });
    const { host: fresh } = adapter();
    expect((await hostError(fresh.knownHosts())).kind).toBe('unavailable');
    expect(await fresh.knownHosts()).toEqual([`[127.0.0.1]:2222 ${ed25519}`]);
  });

  it('uses configured known_hosts lines as given, without asking the host', async () => {
    const lines = [
      'github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl',
    ];
    const { host } = adapter({ knownHosts: lines });
    const before = requests();
    expect(await host.knownHosts()).toEqual(lines);
    expect(requests() - before).toBe(0);
  });

  it('builds SSH clone URLs from the configured base', () => {
    const { host } = adapter({ sshUrl: 'ssh://git@127.0.0.1:2222/' });
    expect(host.cloneUrl(REPO)).toBe('ssh://git@127.0.0.1:2222/acme/models.git');
  });
});

describe('host registry', () => {
  it('builds one adapter per configured host, by the id callers name', () => {
    const common = { sshUrl: 'ssh://git@127.0.0.1:2222', token: TOKEN };
    const registry = createHostRegistry(
      [
        { id: 'github', type: 'github', apiUrl: standIn.url, ...common },
        { id: 'gitlab', type: 'gitlab', apiUrl: 'http://127.0.0.1:1/api/v4', ...common },
      ],
      { metrics: createMetrics(), logger: createLogger('silent') },
    );
    expect(registry.ids()).toEqual(['github', 'gitlab']);
    expect(registry.get('gitlab')?.type).toBe('gitlab');
    expect(registry.all().map((host) => host.type)).toEqual(['github', 'gitlab']);
    expect(registry.get('bitbucket')).toBeUndefined();
  });
});
