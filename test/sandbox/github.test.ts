import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Octokit } from '@octokit/rest';
import { Ajv, type AnySchemaObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import sshpk from 'sshpk';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type GithubStandIn, startGithubStandIn } from '../../sandbox/github/stand-in.ts';
import { createHostState, type HostState } from '../../sandbox/shared/host-state.ts';

type Operation = {
  responses: Record<string, { content: { 'application/json': { schema: AnySchemaObject } } }>;
};
const spec = JSON.parse(
  readFileSync(new URL('../fixtures/github-rest.openapi.json', import.meta.url), 'utf8'),
) as { paths: Record<string, Record<string, Operation>> };
const schemaOf = (path: string, method: string, status: string) =>
  spec.paths[path]![method]!.responses[status]!.content['application/json'].schema;
const KEYS = '/repos/{owner}/{repo}/keys';
const KEY = '/repos/{owner}/{repo}/keys/{key_id}';
const schemas = {
  listed: schemaOf(KEYS, 'get', '200').items as AnySchemaObject,
  created: schemaOf(KEYS, 'post', '201'),
  fetched: schemaOf(KEY, 'get', '200'),
  validationError: schemaOf(KEYS, 'post', '422'),
  basicError: schemaOf(KEY, 'get', '404'),
  meta: schemaOf('/meta', 'get', '200'),
};

const ajv = new Ajv({ allErrors: true });
ajv.addKeyword('example');
addFormats.default(ajv);

const compiled = new Map<AnySchemaObject, ValidateFunction>();
function expectSchema(schema: AnySchemaObject, body: unknown) {
  const validate = compiled.get(schema) ?? ajv.compile(schema);
  compiled.set(schema, validate);
  expect(validate(body), ajv.errorsText(validate.errors)).toBe(true);
}

// Every documented field, with the documented types and nullability, and nothing GitHub does not send.
function expectDeployKey(schema: AnySchemaObject, body: unknown) {
  expectSchema(schema, body);
  expect(Object.keys(body as object).sort()).toEqual(Object.keys(schema.properties).sort());
}

function publicKey(kind: 'ed25519' | 'rsa' | 'ec' = 'ed25519'): string {
  const { privateKey } =
    kind === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : kind === 'ec'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const [type, data] = sshpk.parsePrivateKey(pem, 'pem').toPublic().toString('ssh').split(' ');
  return `${type} ${data}`;
}

type HttpFailure = {
  status: number;
  message: string;
  response: { headers: Record<string, string>; data: { message: string; errors?: unknown[] } };
};
async function failure(request: Promise<unknown>): Promise<HttpFailure> {
  const error = await request.then(
    () => undefined,
    (reason: HttpFailure) => reason,
  );
  expect(error, 'expected the request to fail').toBeDefined();
  return error!;
}

const TOKEN = 'ghp_sandboxTokenAlpha';
const OTHER_TOKEN = 'ghp_sandboxTokenBravo';
const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
const repo = { owner: 'acme', repo: 'widgets' };

let state: HostState;
let github: GithubStandIn;
let hostKeys: string[];
const client = (auth?: string) => new Octokit({ auth, baseUrl: github.url, log: quiet });

beforeEach(async () => {
  state = createHostState('github');
  state.addRepository('acme/widgets', '/srv/git/acme/widgets.git');
  state.addRepository('acme/gadgets', '/srv/git/acme/gadgets.git');
  hostKeys = [];
  github = await startGithubStandIn({ state, tokens: [TOKEN, OTHER_TOKEN], sshHostKeys: () => hostKeys });
});
afterEach(async () => {
  vi.useRealTimers();
  await github.close();
});

describe('GitHub stand-in: deploy keys', () => {
  it('creates a key, returns it normalized, reads it back, lists and deletes it', async () => {
    const octokit = client(TOKEN);
    const key = publicKey();
    const created = await octokit.rest.repos.createDeployKey({
      ...repo,
      title: 'ci',
      key: `${key} me@laptop`,
      read_only: true,
    });
    expect(created.status).toBe(201);
    expectDeployKey(schemas.created, created.data);
    expect(created.data).toMatchObject({
      key,
      title: 'ci',
      read_only: true,
      verified: true,
      last_used: null,
    });
    expect(created.data.url).toBe(`${github.url}/repos/acme/widgets/keys/${created.data.id}`);
    expect(created.headers.location).toBe(created.data.url);
    expect(created.data.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    const fetched = await octokit.rest.repos.getDeployKey({ ...repo, key_id: created.data.id });
    expectDeployKey(schemas.fetched, fetched.data);
    expect(fetched.data).toEqual(created.data);
    const listed = await octokit.rest.repos.listDeployKeys(repo);
    for (const item of listed.data) expectDeployKey(schemas.listed, item);
    expect(listed.data.map((item) => item.id)).toEqual([created.data.id]);
    expect(listed.headers.link).toBeUndefined();

    expect((await octokit.rest.repos.deleteDeployKey({ ...repo, key_id: created.data.id })).status).toBe(204);
    const gone = await failure(octokit.rest.repos.getDeployKey({ ...repo, key_id: created.data.id }));
    expect(gone.status).toBe(404);
    expectSchema(schemas.basicError, gone.response.data);
    expect(
      (await failure(octokit.rest.repos.deleteDeployKey({ ...repo, key_id: created.data.id }))).status,
    ).toBe(404);
  });

  it('accepts RSA and ECDSA keys and defaults read_only to false as GitHub does', async () => {
    const octokit = client(TOKEN);
    for (const kind of ['rsa', 'ec'] as const) {
      const created = await octokit.rest.repos.createDeployKey({ ...repo, key: publicKey(kind) });
      expectDeployKey(schemas.created, created.data);
      expect(created.data.read_only).toBe(false);
    }
  });

  it('refuses a public key already in use on any repository of the host', async () => {
    const octokit = client(TOKEN);
    const key = publicKey();
    const first = await octokit.rest.repos.createDeployKey({ ...repo, key, read_only: true });
    const error = await failure(
      octokit.rest.repos.createDeployKey({ owner: 'acme', repo: 'gadgets', key: `${key} other-comment` }),
    );
    expect(error.status).toBe(422);
    expectSchema(schemas.validationError, error.response.data);
    expect(error.response.data).toEqual({
      message: 'Validation Failed',
      errors: [{ resource: 'PublicKey', code: 'custom', field: 'key', message: 'key is already in use' }],
      documentation_url: 'https://docs.github.com/rest/deploy-keys/deploy-keys#create-a-deploy-key',
      status: '422',
    });
    await octokit.rest.repos.deleteDeployKey({ ...repo, key_id: first.data.id });
    const again = await octokit.rest.repos.createDeployKey({ owner: 'acme', repo: 'gadgets', key });
    expectDeployKey(schemas.created, again.data);
  });

  it('answers 422 for malformed, private, missing or mistyped keys', async () => {
    const octokit = client(TOKEN);
    const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    for (const key of ['ssh-ed25519 AAAAnotakey', pem, 'hello world']) {
      const error = await failure(octokit.rest.repos.createDeployKey({ ...repo, key }));
      expect(error.status).toBe(422);
      expectSchema(schemas.validationError, error.response.data);
      expect(error.response.data.errors).toEqual([
        {
          resource: 'PublicKey',
          code: 'custom',
          field: 'key',
          message: 'key is invalid. You must supply a key in OpenSSH public key format',
        },
      ]);
    }
    const missing = await failure(
      octokit.request('POST /repos/{owner}/{repo}/keys', { ...repo, title: 'x' } as never),
    );
    expect(missing.status).toBe(422);
    expectSchema(schemas.validationError, missing.response.data);
    expect(missing.response.data.message).toBe('Invalid request.\n\n"key" wasn\'t supplied.');
    const mistyped = await failure(
      octokit.request('POST /repos/{owner}/{repo}/keys', {
        ...repo,
        key: publicKey(),
        read_only: 'yes',
      } as never),
    );
    expect(mistyped.status).toBe(422);
    expectSchema(schemas.validationError, mistyped.response.data);
    expect(state.listKeys(1)).toEqual([]);
  });

  it('paginates with GitHub Link headers that octokit.paginate follows', async () => {
    const octokit = client(TOKEN);
    const created = await Promise.all(
      Array.from({ length: 150 }, (_, i) =>
        octokit.rest.repos.createDeployKey({ ...repo, title: `k${i}`, key: publicKey() }),
      ),
    );
    for (const response of created) expectDeployKey(schemas.created, response.data);

    const first = await octokit.rest.repos.listDeployKeys(repo);
    expect(first.data).toHaveLength(30);
    const byId = `${github.url}/repositories/1/keys`;
    expect(first.headers.link).toBe(`<${byId}?page=2>; rel="next", <${byId}?page=5>; rel="last"`);
    const middle = await octokit.rest.repos.listDeployKeys({ ...repo, per_page: 50, page: 2 });
    expect(middle.headers.link).toBe(
      `<${byId}?per_page=50&page=1>; rel="prev", <${byId}?per_page=50&page=3>; rel="next", ` +
        `<${byId}?per_page=50&page=3>; rel="last", <${byId}?per_page=50&page=1>; rel="first"`,
    );
    const capped = await octokit.rest.repos.listDeployKeys({ ...repo, per_page: 500 });
    expect(capped.data).toHaveLength(100);

    const all = await octokit.paginate(octokit.rest.repos.listDeployKeys, { ...repo, per_page: 100 });
    for (const item of all) expectDeployKey(schemas.listed, item);
    expect(all.map((item) => item.id).sort()).toEqual(created.map((response) => response.data.id).sort());
  });
});

describe('GitHub stand-in: auth and errors', () => {
  it('answers 401 to missing or bad credentials and accepts both token and Bearer schemes', async () => {
    const bad = await failure(client('ghp_wrong').rest.repos.listDeployKeys(repo));
    expect(bad.status).toBe(401);
    expect(bad.response.data).toEqual({
      message: 'Bad credentials',
      documentation_url: 'https://docs.github.com/rest',
      status: '401',
    });
    const badBearer = await failure(
      client().request('GET /meta', { headers: { authorization: 'Bearer ghp_wrong' } }),
    );
    expect(badBearer.status).toBe(401);
    const missing = await failure(client().rest.repos.listDeployKeys(repo));
    expect(missing.status).toBe(401);
    expect(missing.response.data.message).toBe('Requires authentication');

    for (const authorization of [`token ${TOKEN}`, `Bearer ${TOKEN}`]) {
      const listed = await client().rest.repos.listDeployKeys({ ...repo, headers: { authorization } });
      expect(listed.status).toBe(200);
    }
  });

  it('answers 404 for an unknown repository or route, and finds repositories case-insensitively', async () => {
    const octokit = client(TOKEN);
    const unknown = await failure(octokit.rest.repos.listDeployKeys({ owner: 'acme', repo: 'nope' }));
    expect(unknown.status).toBe(404);
    expectSchema(schemas.basicError, unknown.response.data);
    expect(unknown.response.data).toEqual({
      message: 'Not Found',
      documentation_url: 'https://docs.github.com/rest/deploy-keys/deploy-keys#list-deploy-keys',
      status: '404',
    });
    const route = await failure(octokit.request('GET /nowhere'));
    expect(route.status).toBe(404);
    expect(route.response.data).toEqual({
      message: 'Not Found',
      documentation_url: 'https://docs.github.com/rest',
      status: '404',
    });

    const created = await octokit.rest.repos.createDeployKey({
      owner: 'ACME',
      repo: 'Widgets',
      key: publicKey(),
    });
    expect(created.data.url).toBe(`${github.url}/repos/acme/widgets/keys/${created.data.id}`);
  });

  it('answers an injected fault with GitHub’s error shape, then serves normally', async () => {
    const rule = { status: 502, method: 'POST', pathPrefix: '/repos/acme/widgets/keys', count: 1 };
    const admin = await fetch(`${github.url}/_sandbox/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(rule),
    });
    expect(admin.status).toBe(204);
    const octokit = client(TOKEN);
    const failed = await failure(octokit.rest.repos.createDeployKey({ ...repo, key: publicKey() }));
    expect(failed.status).toBe(502);
    expect(failed.response.data).toMatchObject({
      message: 'Server Error',
      documentation_url: 'https://docs.github.com/rest',
    });
    expect((await octokit.rest.repos.createDeployKey({ ...repo, key: publicKey() })).status).toBe(201);
    expect(github.faults.stats().injected).toBe(1);
  });
});

describe('GitHub stand-in: rate limits', () => {
  it('sends x-ratelimit-* headers on every response, counting down', async () => {
    const octokit = client(TOKEN);
    const one = await octokit.rest.repos.listDeployKeys(repo);
    const two = await failure(octokit.rest.repos.getDeployKey({ ...repo, key_id: 1 }));
    const nowSeconds = Date.now() / 1000;
    expect(one.headers['x-ratelimit-limit']).toBe('5000');
    expect(one.headers['x-ratelimit-resource']).toBe('core');
    expect(Number(one.headers['x-ratelimit-reset'])).toBeGreaterThan(nowSeconds);
    expect(Number(one.headers['x-ratelimit-reset'])).toBeLessThanOrEqual(nowSeconds + 3601);
    expect(Number(two.response.headers['x-ratelimit-remaining'])).toBe(
      Number(one.headers['x-ratelimit-remaining']) - 1,
    );
    expect(Number(two.response.headers['x-ratelimit-used'])).toBe(
      Number(one.headers['x-ratelimit-used']) + 1,
    );
    const unauthenticated = await failure(client('ghp_wrong').rest.repos.listDeployKeys(repo));
    expect(unauthenticated.response.headers['x-ratelimit-limit']).toBe('60');
  });

  it('answers 403 with x-ratelimit-remaining 0 once the primary limit is spent, until the window resets', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: new Date('2030-01-01T00:00:00Z') });
    github.setRateLimit({ limit: 3, windowSeconds: 60 });
    const octokit = client(TOKEN);
    for (let i = 0; i < 3; i += 1) await octokit.rest.repos.listDeployKeys(repo);
    const spent = await failure(octokit.rest.repos.listDeployKeys(repo));
    expect(spent.status).toBe(403);
    expect(spent.response.headers['x-ratelimit-remaining']).toBe('0');
    expect(spent.response.headers['x-ratelimit-reset']).toBe(
      String(Date.parse('2030-01-01T00:01:00Z') / 1000),
    );
    expect(spent.response.data.message).toMatch(/^API rate limit exceeded for user ID 1\./);
    expect((await client(OTHER_TOKEN).rest.repos.listDeployKeys(repo)).status).toBe(200);

    vi.setSystemTime(new Date('2030-01-01T00:01:00Z'));
    const renewed = await octokit.rest.repos.listDeployKeys(repo);
    expect(renewed.headers['x-ratelimit-remaining']).toBe('2');
  });

  it('answers writes beyond the secondary limit with 403, retry-after and GitHub’s secondary-limit message', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: new Date('2030-01-01T00:00:00Z') });
    github.setRateLimit({ secondary: { writesPerSecond: 2 } });
    const octokit = client(TOKEN);
    await octokit.rest.repos.createDeployKey({ ...repo, key: publicKey() });
    await octokit.rest.repos.createDeployKey({ ...repo, key: publicKey() });
    const limited = await failure(octokit.rest.repos.createDeployKey({ ...repo, key: publicKey() }));
    expect(limited.status).toBe(403);
    expect(limited.response.headers['retry-after']).toBe('1');
    expect(limited.message).toMatch(/\bsecondary rate\b/i);
    expect(limited.response.headers['x-ratelimit-remaining']).toBeUndefined();
    expect((await octokit.rest.repos.listDeployKeys(repo)).data).toHaveLength(2);

    vi.setSystemTime(new Date('2030-01-01T00:00:01Z'));
    expect((await octokit.rest.repos.createDeployKey({ ...repo, key: publicKey() })).status).toBe(201);
  });
});

describe('GitHub stand-in: /meta', () => {
  it('publishes the host keys, read when asked, with fingerprints as github.com formats them', async () => {
    expect((await client().rest.meta.get()).data.ssh_keys).toEqual([]);
    hostKeys = [`${publicKey()} host`, publicKey('ec')];
    const meta = await client().rest.meta.get();
    expectSchema(schemas.meta, meta.data);
    expect(meta.data.verifiable_password_authentication).toBe(false);
    expect(meta.data.ssh_keys).toEqual(hostKeys.map((key) => key.split(' ').slice(0, 2).join(' ')));
    const [ed25519, ecdsa] = hostKeys.map((key) =>
      sshpk.parseKey(key, 'ssh').fingerprint('sha256').toString(),
    );
    expect(`SHA256:${meta.data.ssh_key_fingerprints?.SHA256_ED25519}`).toBe(ed25519);
    expect(`SHA256:${meta.data.ssh_key_fingerprints?.SHA256_ECDSA}`).toBe(ecdsa);
    const keygen = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', '-'], {
      input: hostKeys[0],
    }).toString();
    expect(keygen.split(' ')[1]).toBe(ed25519);
  });
});
