// The contract every host type keeps, run against the GitHub, GitLab and Gitea stand-ins alike through
// the service's one adapter core. What only one host does is in github-host.test.ts and
// gitlab-host.test.ts.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startGiteaStandIn } from '../../sandbox/gitea/stand-in.ts';
import { startGithubStandIn } from '../../sandbox/github/stand-in.ts';
import { startGitlabStandIn } from '../../sandbox/gitlab/stand-in.ts';
import type { FaultInjector } from '../../sandbox/shared/faults.ts';
import { createHostState, type HostState } from '../../sandbox/shared/host-state.ts';
import type { HostConfig } from '../../src/config.ts';
import type { HostAdapterDeps } from '../../src/hosts/host-http.ts';
import { createHostRegistry } from '../../src/hosts/host-registry.ts';
import { generateEd25519 } from '../support/git-client.ts';
import { answersByStatus, hostError, testAdapter, testHostDeps } from '../support/host-adapters.ts';

const REPO = 'acme/models';
const SSH_URL = 'ssh://git@127.0.0.1:2222';

interface StandIn {
  url: string;
  faults: FaultInjector;
  setRateLimit(options: undefined): void;
  close(): Promise<void>;
}

/** One host type as the contract sees it: its stand-in and what differs only in shape. */
interface HostType {
  type: HostConfig['type'];
  token: string;
  start(state: HostState, token: string): Promise<StandIn>;
  config?: Partial<HostConfig>;
  /** How the host refuses a malformed key: status and a word of its reason. */
  refusal: { status: number; reason: string };
  /** The host's answer to a create, had it registered the key with write access. */
  writableAnswer(id: number, title: string, key: string): unknown;
  /** Requests to list 120 keys: the host's largest page decides. */
  requestsFor120Keys: number;
}

const HOST_TYPES: HostType[] = [
  {
    type: 'github',
    token: `ghp_${'a1B2'.repeat(9)}`,
    start: (state, token) =>
      startGithubStandIn({ state, tokens: [token], sshHostKeys: () => [generateEd25519().publicKey] }),
    refusal: { status: 422, reason: 'key is invalid' },
    writableAnswer: (id, title, key) => ({ id, key, title, read_only: false, verified: true }),
    requestsFor120Keys: 2,
  },
  {
    type: 'gitlab',
    token: 'glpat-0123456789abcdefghij',
    start: (state, token) => startGitlabStandIn({ state, tokens: [token] }),
    config: { knownHosts: ['[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfTheStandIn'] },
    refusal: { status: 400, reason: 'deploy_key.key' },
    writableAnswer: (id, title, key) => ({ id, key, title, can_push: true, expires_at: null }),
    requestsFor120Keys: 2,
  },
  {
    type: 'gitea',
    token: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
    // Gitea clients are given the API root, `…/api/v1`.
    start: async (state, token) => {
      const standIn = await startGiteaStandIn({ state, tokens: [token] });
      return Object.assign(standIn, { url: standIn.apiUrl });
    },
    config: { knownHosts: ['[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfTheStandIn'] },
    refusal: { status: 422, reason: 'key' },
    writableAnswer: (id, title, key) => ({
      id,
      key_id: id,
      key,
      url: `http://127.0.0.1/api/v1/repos/${REPO}/keys/${id}`,
      title,
      fingerprint: 'SHA256:x',
      created_at: '2026-01-01T00:00:00Z',
      read_only: false,
    }),
    // Gitea caps a page at 50 keys (MAX_RESPONSE_ITEMS).
    requestsFor120Keys: 3,
  },
];

const inAnHour = () => new Date(Date.now() + 3_600_000);

describe.each(HOST_TYPES)('$type host adapter', (hostType) => {
  let standIn: StandIn;
  let state: HostState;

  beforeAll(async () => {
    state = createHostState(hostType.type);
    state.addRepository(REPO, '/nonexistent');
    standIn = await hostType.start(state, hostType.token);
  });
  afterAll(async () => {
    await standIn?.close();
  });
  beforeEach(() => {
    standIn.faults.clear();
    standIn.setRateLimit(undefined);
  });

  const adapter = (config: Partial<HostConfig> = {}, deps: Partial<HostAdapterDeps> = {}) =>
    testAdapter(
      {
        id: hostType.type,
        type: hostType.type,
        apiUrl: standIn.url,
        sshUrl: SSH_URL,
        token: hostType.token,
        ...hostType.config,
        ...config,
      },
      deps,
    );

  // Gitea refuses a second key of the same title on a repository; the service's titles are unique.
  let keysMade = 0;
  const newKey = (title = `deploykey-rotator:contract ${++keysMade}`) => ({
    repository: REPO,
    title,
    publicKey: generateEd25519().publicKey,
    expiresAt: inAnHour(),
    caller: 'token:test',
  });
  const requests = () => standIn.faults.stats().total;

  it('registers a key read-only, as the host stores it, and deletes it once', async () => {
    const { host } = adapter();
    const { publicKey } = generateEd25519();
    const added = await host.addDeployKey({
      ...newKey('deploykey-rotator:test add'),
      publicKey: `${publicKey} ci@x`,
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
    const input = newKey('deploykey-rotator:retried');
    const first = await host.addDeployKey(input);
    expect(await host.addDeployKey(input)).toEqual(first);
    expect(state.keysWithBlob(input.publicKey)).toHaveLength(1);
  });

  it('takes back a key the host registered with write access, and says so', async () => {
    const { host, metrics } = adapter();
    const input = newKey('deploykey-rotator:writable');
    standIn.faults.add({
      status: 201,
      method: 'POST',
      body: hostType.writableAnswer(987_654, input.title, input.publicKey),
      count: 1,
    });
    const error = await hostError(host.addDeployKey(input));
    expect(error.kind).toBe('invalid');
    expect(error.message).toContain('write access');
    // The DELETE for the writable key reached the host (404 here: the stand-in never stored it).
    expect(await answersByStatus(metrics)).toEqual({ '201': 1, '404': 1 });
  });

  it('refuses a malformed repository and a title that does not mark the key as ours, asking the host nothing', async () => {
    const { host } = adapter();
    const before = requests();
    for (const repository of ['acme', 'acme//models', 'acme/../models', ' acme/models']) {
      expect((await hostError(host.addDeployKey({ ...newKey(), repository }))).kind).toBe('invalid');
      expect((await hostError(host.deleteDeployKey(repository, '1'))).kind).toBe('invalid');
      expect((await hostError(host.listDeployKeys(repository))).kind).toBe('invalid');
    }
    const stranger = await hostError(host.addDeployKey(newKey('someone else’s key')));
    expect(stranger.message).toContain('deploykey-rotator:');
    expect(requests() - before).toBe(0);
  });

  it('lists every key of a repository across pages', async () => {
    const repository = state.addRepository('acme/crowded', '/nonexistent');
    const ids = Array.from({ length: 120 }, (_, i) =>
      String(
        state.addKey({
          repositoryId: repository.id,
          title: `key ${i}`,
          key: generateEd25519().publicKey,
          readOnly: i % 2 === 0,
          expiresAt: null,
        }).id,
      ),
    );
    const { host } = adapter();
    const before = requests();
    const keys = await host.listDeployKeys('acme/crowded');
    expect(keys.map((key) => key.hostKeyId).sort()).toEqual(ids.sort());
    expect(keys.filter((key) => !key.readOnly)).toHaveLength(60);
    expect(requests() - before).toBe(hostType.requestsFor120Keys);
  });

  it('reports a repository it cannot see as not-found, and a bad token as unauthorized without retrying', async () => {
    const { host } = adapter();
    expect(await hostError(host.listDeployKeys('acme/missing'))).toMatchObject({
      kind: 'not-found',
      code: 'host-not-found',
    });
    const { host: stranger } = adapter({ token: `${hostType.token}-wrong` });
    const before = requests();
    const error = await hostError(stranger.listDeployKeys(REPO));
    expect(error).toMatchObject({ kind: 'unauthorized', status: 401, code: 'host-unauthorized' });
    expect(error.detail).not.toContain(hostType.token);
    expect(requests() - before).toBe(1);
  });

  it('uses its token file as rotated in place, from the next request on, without a restart', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'host-token-')), 'token');
    writeFileSync(file, `${hostType.token}-revoked\n`, { mode: 0o600 });
    let now = Date.now();
    const { host } = adapter(
      { token: `${hostType.token}-revoked`, credential: { type: 'token', token: { file } } },
      { clock: () => new Date(now) },
    );
    expect(await hostError(host.listDeployKeys(REPO))).toMatchObject({ kind: 'unauthorized' });
    // A mounted Secret rotated in place: the file changes under the running service.
    writeFileSync(file, `${hostType.token}\n`);
    now += 1_500;
    expect(Array.isArray(await host.listDeployKeys(REPO))).toBe(true);
  });

  it('passes the host’s reason along when it refuses a key', async () => {
    const { host } = adapter();
    const error = await hostError(host.addDeployKey({ ...newKey(), publicKey: 'ssh-ed25519 not-a-key' }));
    expect(error).toMatchObject({ kind: 'invalid', status: hostType.refusal.status });
    expect(error.message).toContain(hostType.refusal.reason);
  });

  it('retries server errors, reads and writes alike, and counts every answer', async () => {
    const { host, metrics } = adapter();
    standIn.faults.add({ status: 500, count: 2, method: 'GET' });
    expect(await host.listDeployKeys(REPO)).toBeInstanceOf(Array);
    expect(await answersByStatus(metrics)).toEqual({ '500': 2, '200': 1 });

    standIn.faults.add({ status: 503, count: 1, method: 'POST' });
    const input = newKey();
    await host.addDeployKey(input);
    expect(state.keysWithBlob(input.publicKey)).toHaveLength(1);
    expect(await answersByStatus(metrics)).toEqual({ '500': 2, '503': 1, '200': 1, '201': 1 });
  });

  it('gives up on a host that keeps failing after a bounded number of quick retries', async () => {
    const { host, metrics } = adapter();
    standIn.faults.add({ status: 502 });
    const error = await hostError(host.listDeployKeys(REPO));
    expect(error).toMatchObject({ kind: 'unavailable', status: 502 });
    expect(await answersByStatus(metrics)).toEqual({ '502': 3 });
  });

  it('reports a host it cannot connect to as unavailable, after the same retries', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));

    const { host, metrics } = adapter({ apiUrl: `http://127.0.0.1:${port}/api/v4` });
    expect((await hostError(host.listDeployKeys(REPO))).kind).toBe('unavailable');
    expect(await answersByStatus(metrics)).toEqual({ network: 3 });
  });

  it('times out a request that gets no answer, without retrying it', async () => {
    const { host, metrics } = adapter({}, { requestTimeoutMs: 200 });
    standIn.faults.add({ latencyMs: 1_500, count: 1 });
    const before = requests();
    expect((await hostError(host.listDeployKeys(REPO))).kind).toBe('timeout');
    expect(requests() - before).toBe(1);
    expect(await answersByStatus(metrics)).toEqual({ timeout: 1 });
  });

  it('waits out a rate limit that asks for a short pause, then succeeds', async () => {
    const { host, metrics } = adapter();
    standIn.faults.add({ status: 429, method: 'GET', headers: { 'retry-after': '1' }, count: 1 });
    const started = Date.now();
    await host.listDeployKeys(REPO);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(await answersByStatus(metrics)).toEqual({ '429': 1, '200': 1 });
  });

  it('lets a rate-limited write wait in the queue, not in its slot, so a revoke queued meanwhile goes first', async () => {
    const { host } = adapter({ writes: { concurrency: 1, minIntervalMs: 0 } });
    const existing = await host.addDeployKey(newKey());
    standIn.faults.add({ status: 429, method: 'POST', headers: { 'retry-after': '1' }, count: 1 });
    const limited = () => standIn.faults.stats().byStatus['429'] ?? 0;
    const limitedBefore = limited();
    const settled: string[] = [];
    const issue = host.addDeployKey(newKey()).then(() => settled.push('issue'));
    while (limited() === limitedBefore) await new Promise((resolve) => setImmediate(resolve));
    const revoke = host.deleteDeployKey(REPO, existing.hostKeyId).then(() => settled.push('revoke'));
    await Promise.all([issue, revoke]);
    expect(settled).toEqual(['revoke', 'issue']);
  });

  it('fails fast as rate-limited when the host asks for a longer pause than we wait', async () => {
    const { host } = adapter();
    standIn.faults.add({ status: 429, headers: { 'retry-after': '60' }, count: 1 });
    const before = requests();
    const error = await hostError(host.listDeployKeys(REPO));
    expect(error).toMatchObject({
      kind: 'rate-limited',
      status: 429,
      retryAfterSeconds: 60,
      code: 'host-rate-limited',
    });
    expect(requests() - before).toBe(1);
  });

  it('uses configured known_hosts lines as given, without asking the host', async () => {
    const lines = [
      '[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl',
    ];
    const { host } = adapter({ knownHosts: lines });
    const before = requests();
    expect(await host.knownHosts()).toEqual(lines);
    expect(requests() - before).toBe(0);
  });

  it('builds SSH clone URLs from the configured base', () => {
    const { host } = adapter({ sshUrl: `${SSH_URL}/` });
    expect(host.cloneUrl(REPO)).toBe('ssh://git@127.0.0.1:2222/acme/models.git');
  });
});

describe('host registry', () => {
  it('builds one adapter per configured host, by the id callers name', () => {
    const common = { sshUrl: SSH_URL, token: 't' };
    const registry = createHostRegistry(
      [
        { id: 'github', type: 'github', apiUrl: 'http://127.0.0.1:1', ...common },
        { id: 'gitlab', type: 'gitlab', apiUrl: 'http://127.0.0.1:1/api/v4', ...common },
        { id: 'forgejo', type: 'gitea', apiUrl: 'http://127.0.0.1:1/api/v1', ...common },
      ],
      testHostDeps(),
    );
    expect(registry.ids()).toEqual(['github', 'gitlab', 'forgejo']);
    expect(registry.get('forgejo')?.type).toBe('gitea');
    expect(registry.get('gitlab')?.type).toBe('gitlab');
    expect(registry.get('bitbucket')).toBeUndefined();
  });
});
