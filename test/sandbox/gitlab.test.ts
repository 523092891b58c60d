import { generateKeyPairSync } from 'node:crypto';
import { createRequesterFn, type RequestOptions } from '@gitbeaker/requester-utils';
import { GitbeakerRequestError, GitbeakerRetryError, Gitlab } from '@gitbeaker/rest';
import sshpk from 'sshpk';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type GitlabStandIn, startGitlabStandIn } from '../../sandbox/gitlab/stand-in.ts';
import { createHostState, type HostState, normalizeKeyBlob } from '../../sandbox/shared/host-state.ts';

const TOKEN = 'glpat-sandbox-token';

function newPublicKey(comment = 'ci@runner'): string {
  const { publicKey } = generateKeyPairSync('ed25519');
  const key = sshpk.parseKey(publicKey.export({ type: 'spki', format: 'pem' }), 'pem');
  key.comment = comment;
  return key.toString('ssh');
}

function expectedFingerprints(key: string) {
  const parsed = sshpk.parseKey(key, 'ssh');
  return {
    fingerprint: parsed.fingerprint('md5').toString('hex'),
    fingerprint_sha256: parsed.fingerprint('sha256').toString(),
  };
}

/** The rejection gitbeaker raised, with the HTTP response it carries. */
async function failure(promise: Promise<unknown>) {
  const error = await promise.catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(GitbeakerRequestError);
  const cause = (error as GitbeakerRequestError).cause as { description: string; response: Response };
  return { status: cause.response.status, description: cause.description, headers: cause.response.headers };
}

// gitbeaker retries 429 and 502 ten times on its own and drops the response; this requester asks once.
const singleShotRequester = createRequesterFn(
  async (_service, options) => options,
  async (endpoint, options) => {
    const { prefixUrl, searchParams, method, headers, body } = (options ?? {}) as RequestOptions;
    const base = prefixUrl?.endsWith('/') ? prefixUrl : `${prefixUrl}/`;
    const url = new URL(endpoint, base);
    url.search = searchParams ?? '';
    const init: RequestInit = {};
    if (method) init.method = method;
    if (headers) init.headers = headers;
    if (body !== undefined) init.body = body;
    const request = new Request(url, init);
    const response = await fetch(request);
    if (!response.ok) {
      const description = await response.text();
      throw new GitbeakerRequestError(description, { cause: { description, request, response } });
    }
    const parsed = response.status === 204 ? null : ((await response.json()) as Record<string, unknown>);
    return { body: parsed, headers: Object.fromEntries(response.headers.entries()), status: response.status };
  },
);

describe('GitLab stand-in: project deploy keys API', () => {
  let state: HostState;
  let gitlab: GitlabStandIn;
  let host: string;
  let api: InstanceType<typeof Gitlab>;

  beforeAll(async () => {
    state = createHostState('gitlab');
    for (const path of ['acme/models', 'acme/datasets', 'research/vision/detector']) {
      state.addRepository(path, `/nonexistent/${path}.git`);
    }
    gitlab = await startGitlabStandIn({ state, tokens: [TOKEN] });
    // gitbeaker appends /api/v4 to `host` itself.
    host = gitlab.url.replace(/\/api\/v4$/, '');
    api = new Gitlab({ host, token: TOKEN });
  });

  afterEach(() => {
    gitlab.setRateLimit(undefined);
    gitlab.faults.clear();
    for (const repository of state.listRepositories()) {
      for (const key of state.listKeys(repository.id)) state.deleteKey(repository.id, key.id);
    }
  });

  afterAll(() => gitlab.close());

  it('creates a read-only key by default with the documented fields and fingerprints', async () => {
    const key = newPublicKey('deploy@ci');
    const created = await api.DeployKeys.create('acme/models', 'deploykey-rotator:k1', key);

    expect(created).toEqual({
      id: expect.any(Number),
      title: 'deploykey-rotator:k1',
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      expires_at: null,
      key,
      usage_type: 'auth_and_signing',
      ...expectedFingerprints(key),
      can_push: false,
    });
    expect(created.fingerprint).toMatch(/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
    expect(created.fingerprint_sha256).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(state.authorize(normalizeKeyBlob(key), 'acme/models', false)).toBe('allowed');
    expect(state.authorize(normalizeKeyBlob(key), 'acme/models', true)).toBe('read-only');
  });

  it('creates a key that can push, with an expiry after which SSH refuses it', async () => {
    const key = newPublicKey();
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
    // gitbeaker 43 does not type `expiresAt` on create, but sends whatever options it is given.
    const options = { canPush: true, expiresAt };
    const created = await api.DeployKeys.create('acme/models', 'deploykey-rotator:k2', key, options);

    expect(created.can_push).toBe(true);
    expect(created.expires_at).toBe(expiresAt);
    expect(state.authorize(normalizeKeyBlob(key), 'acme/models', true)).toBe('allowed');
    const afterExpiry = new Date(Date.parse(expiresAt) + 1000);
    expect(state.isUsableKey(normalizeKeyBlob(key), afterExpiry)).toBe(false);
  });

  it('refuses an expires_at in the past, as Key#expiration does on create', async () => {
    const options = { canPush: false, expiresAt: new Date(Date.now() - 60_000).toISOString() };
    const error = await failure(api.DeployKeys.create('acme/models', 'late', newPublicKey(), options));
    expect(error.status).toBe(400);
    expect(JSON.parse(error.description)).toEqual({ 'deploy_key.key': ['has expired'] });
  });

  it('lists, shows and removes keys by numeric id and by full path', async () => {
    const project = state.findRepository('acme/models')!;
    const first = await api.DeployKeys.create(project.id, 'one', newPublicKey());
    const second = await api.DeployKeys.create('acme/models', 'two', newPublicKey());

    const listed = await api.DeployKeys.all({ projectId: project.id });
    expect(listed.map((key) => key.id)).toEqual([first.id, second.id]);
    expect(listed[1]).toEqual(second);
    expect(await api.DeployKeys.show('acme/models', first.id)).toEqual(first);

    await api.DeployKeys.remove(project.id, first.id);
    await api.DeployKeys.remove('acme/models', second.id);
    expect(await api.DeployKeys.all({ projectId: 'acme/models' })).toEqual([]);
    expect(state.listKeys(project.id)).toEqual([]);
  });

  it('addresses a project in a nested group by its URL-encoded full path', async () => {
    const key = newPublicKey();
    const created = await api.DeployKeys.create('research/vision/detector', 'nested', key);
    const listed = await api.DeployKeys.all({ projectId: 'research/vision/detector' });
    expect(listed.map((k) => k.id)).toEqual([created.id]);
    expect(state.authorize(normalizeKeyBlob(key), 'research/vision/detector', false)).toBe('allowed');

    await api.DeployKeys.remove('research/vision/detector', created.id);
    expect(await api.DeployKeys.all({ projectId: 'research/vision/detector' })).toEqual([]);
  });

  it('paginates with GitLab headers and a Link header gitbeaker follows', async () => {
    const ids: number[] = [];
    for (let index = 0; index < 5; index += 1) {
      ids.push((await api.DeployKeys.create('acme/models', `page-${index}`, newPublicKey())).id);
    }

    const page = await api.DeployKeys.all({
      projectId: 'acme/models',
      perPage: 2,
      page: 2,
      showExpanded: true,
    });
    expect(page.data.map((key) => key.id)).toEqual(ids.slice(2, 4));
    expect(page.paginationInfo).toEqual({
      total: 5,
      next: 3,
      current: 2,
      previous: 1,
      perPage: 2,
      totalPages: 3,
    });

    const everything = await api.DeployKeys.all({ projectId: 'acme/models', perPage: 2 });
    expect(everything.map((key) => key.id)).toEqual(ids);

    const raw = await fetch(`${gitlab.url}/projects/acme%2Fmodels/deploy_keys?per_page=2&page=3`, {
      headers: { 'PRIVATE-TOKEN': TOKEN },
    });
    expect(raw.headers.get('x-next-page')).toBe('');
    expect(raw.headers.get('x-prev-page')).toBe('2');
    expect(raw.headers.get('link')).toBe(
      [
        `<${gitlab.url}/projects/acme%2Fmodels/deploy_keys?id=acme%2Fmodels&page=2&per_page=2>; rel="prev"`,
        `<${gitlab.url}/projects/acme%2Fmodels/deploy_keys?id=acme%2Fmodels&page=1&per_page=2>; rel="first"`,
        `<${gitlab.url}/projects/acme%2Fmodels/deploy_keys?id=acme%2Fmodels&page=3&per_page=2>; rel="last"`,
      ].join(', '),
    );
  });

  it('accepts an OAuth bearer token and refuses missing or unknown tokens with 401', async () => {
    const bearer = new Gitlab({ host, oauthToken: TOKEN });
    expect(await bearer.DeployKeys.all({ projectId: 'acme/models' })).toEqual([]);

    for (const client of [
      new Gitlab({ host, token: 'glpat-wrong' }),
      new Gitlab({ host, oauthToken: 'wrong' }),
      new Gitlab({ host }),
    ]) {
      const error = await failure(client.DeployKeys.all({ projectId: 'acme/models' }));
      expect(error).toMatchObject({ status: 401, description: '401 Unauthorized' });
    }
  });

  it('answers 404 for an unknown project and for unknown keys, in GitLab words', async () => {
    expect(await failure(api.DeployKeys.all({ projectId: 'acme/missing' }))).toMatchObject({
      status: 404,
      description: '404 Project Not Found',
    });
    expect(await failure(api.DeployKeys.show('acme/models', 999_999))).toMatchObject({
      status: 404,
      description: '404 Not found',
    });
    expect(await failure(api.DeployKeys.remove('acme/models', 999_999))).toMatchObject({
      status: 404,
      description: '404 Deploy key Not Found',
    });

    const unknownRoute = await fetch(`${gitlab.url}/projects/acme%2Fmodels/nothing-here`);
    expect(unknownRoute.status).toBe(404);
    expect(await unknownRoute.json()).toEqual({ error: '404 Not Found' });
  });

  it('answers 400 as Grape does for missing parameters and as the model does for a bad key', async () => {
    const missing = await failure(
      api.DeployKeys.create('acme/models', undefined as unknown as string, undefined as unknown as string),
    );
    expect(missing).toMatchObject({ status: 400, description: 'key is missing, title is missing' });

    const invalid = await failure(api.DeployKeys.create('acme/models', 'bad', 'not-a-public-key'));
    expect(invalid.status).toBe(400);
    expect(JSON.parse(invalid.description)).toEqual({
      'deploy_key.key': [
        'type is forbidden. Must be RSA, ECDSA, ED25519, ECDSA_SK, or ED25519_SK',
        'is invalid',
      ],
      'deploy_key.fingerprint_sha256': ['cannot be generated'],
    });
    expect(state.listKeys(state.findRepository('acme/models')!.id)).toEqual([]);
  });

  it('treats a key already on the project as GitLab does, and allows it on another project', async () => {
    const key = newPublicKey('one-word');
    const original = await api.DeployKeys.create('acme/models', 'original', key);

    const again = await api.DeployKeys.create('acme/models', 'again', key);
    expect(again).toEqual(original);
    expect(await api.DeployKeys.all({ projectId: 'acme/models' })).toHaveLength(1);

    const [type, blob] = key.split(' ');
    const otherComment = await failure(
      api.DeployKeys.create('acme/models', 'again', `${type} ${blob} other`),
    );
    expect(otherComment.status).toBe(400);
    expect(JSON.parse(otherComment.description)).toEqual({
      'deploy_key.fingerprint_sha256': ['has already been taken'],
    });

    const joined = await api.DeployKeys.create('acme/datasets', 'ignored title', key);
    expect(joined).toMatchObject({ id: original.id, title: 'original', key, can_push: false });
    expect(state.keysWithBlob(normalizeKeyBlob(key)).map((k) => k.repositoryId)).toHaveLength(2);
  });

  it('throttles over the configured rate with 429, Retry-After and RateLimit headers', async () => {
    gitlab.setRateLimit({ requestsPerSecond: 0.05 });
    expect(await api.DeployKeys.all({ projectId: 'acme/models' })).toEqual([]);

    // Out of the box gitbeaker retries a 429 ten times within a few hundred milliseconds, then gives up.
    await expect(api.DeployKeys.all({ projectId: 'acme/models' })).rejects.toThrow(GitbeakerRetryError);
    await expect(api.DeployKeys.all({ projectId: 'acme/models' })).rejects.toThrow(/last status code: 429/);

    const singleShot = new Gitlab({ host, token: TOKEN, requesterFn: singleShotRequester });
    const throttled = await failure(singleShot.DeployKeys.all({ projectId: 'acme/models' }));
    expect(throttled.status).toBe(429);
    expect(throttled.description).toBe('Retry later\n');
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(throttled.headers.get('retry-after'))).toBeLessThanOrEqual(20);
    expect(throttled.headers.get('ratelimit-name')).toBe('throttle_authenticated_api');
    expect(throttled.headers.get('ratelimit-limit')).toBe('3');
    expect(throttled.headers.get('ratelimit-remaining')).toBe('0');
    expect(Date.parse(throttled.headers.get('ratelimit-resettime') ?? '')).toBeGreaterThan(Date.now() - 1000);

    gitlab.setRateLimit(undefined);
    expect(await singleShot.DeployKeys.all({ projectId: 'acme/models' })).toEqual([]);
  });

  it('fails requests as told through POST /_sandbox/faults', async () => {
    const injected = await fetch(new URL('/_sandbox/faults', host), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ status: 503, method: 'POST', pathPrefix: '/api/v4/projects', count: 1 }),
    });
    expect(injected.status).toBe(204);

    const error = await failure(api.DeployKeys.create('acme/models', 'during outage', newPublicKey()));
    expect(error).toMatchObject({ status: 503, description: '503 Service Unavailable' });
    expect(state.listKeys(state.findRepository('acme/models')!.id)).toEqual([]);

    const created = await api.DeployKeys.create('acme/models', 'after outage', newPublicKey());
    expect(created.title).toBe('after outage');
    expect(gitlab.faults.stats()).toMatchObject({ injected: 1 });
  });
});
