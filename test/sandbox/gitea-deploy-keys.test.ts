import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Api, giteaApi } from 'gitea-js';
import sshpk from 'sshpk';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type GiteaStandIn, startGiteaStandIn } from '../../sandbox/gitea/stand-in.ts';
import { createHostState, type HostState } from '../../sandbox/shared/host-state.ts';
import { expectGiteaDefinition, expectGiteaResponse, propertiesOf } from '../support/gitea-swagger.ts';

type KeyKind = 'ed25519' | 'rsa' | 'ec';

function publicKey(kind: KeyKind = 'ed25519', modulusLength = 2048): string {
  const { privateKey } =
    kind === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength })
      : kind === 'ec'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const [type, data] = sshpk.parsePrivateKey(pem, 'pem').toPublic().toString('ssh').split(' ');
  return `${type} ${data}`;
}

/** What `ssh-keygen -lf` prints as the fingerprint, the form Gitea stores. */
function sshKeygenFingerprint(key: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'gitea-fingerprint-'));
  try {
    writeFileSync(join(dir, 'key.pub'), `${key}\n`);
    return execFileSync('ssh-keygen', ['-lf', join(dir, 'key.pub')], { encoding: 'utf8' }).split(' ')[1]!;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

type Failure = { status: number; error: { message: string; url: string }; headers: Headers };
async function failure(request: Promise<unknown>): Promise<Failure> {
  const error = await request.then(
    () => undefined,
    (reason: Failure) => reason,
  );
  expect(error, 'expected the request to fail').toBeDefined();
  return error!;
}

const TOKEN = 'a'.repeat(40);
const KEYS = '/repos/{owner}/{repo}/keys';
const KEY = '/repos/{owner}/{repo}/keys/{id}';

let state: HostState;
let gitea: GiteaStandIn;
let api: Api<unknown>;

beforeEach(async () => {
  state = createHostState('gitea');
  state.addRepository('acme/models', '/srv/git/acme/models.git');
  state.addRepository('acme/datasets', '/srv/git/acme/datasets.git');
  gitea = await startGiteaStandIn({ state, tokens: [TOKEN], ssh: { host: '127.0.0.1', port: 2222 } });
  // As gitea-js's README shows: the instance root and a token.
  api = giteaApi(gitea.url, { token: TOKEN });
});
afterEach(async () => {
  await gitea.close();
});

describe('Gitea stand-in: deploy keys through gitea-js', () => {
  it('creates a read-only key, reads, lists and deletes it, every answer as Gitea documents it', async () => {
    const key = publicKey();
    const created = await api.repos.repoCreateKey('acme', 'models', {
      title: 'deploykey-rotator:one',
      key: `${key} ci@runner`,
      read_only: true,
    });
    expect(created.status).toBe(201);
    expectGiteaResponse(KEYS, 'post', 201, created.data);
    // Gitea keeps the comment, and answers a create without the repository.
    expect(Object.keys(created.data).sort()).toEqual(
      propertiesOf('DeployKey').filter((p) => p !== 'repository'),
    );
    expect(created.data).toMatchObject({
      key: `${key} ci@runner`,
      title: 'deploykey-rotator:one',
      read_only: true,
      fingerprint: sshKeygenFingerprint(key),
      url: `${gitea.url}/api/v1/repos/acme/models/keys/${created.data.id}`,
    });
    expect(created.data.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    const fetched = await api.repos.repoGetKey('acme', 'models', created.data.id!);
    expectGiteaResponse(KEY, 'get', 200, fetched.data);
    expect(Object.keys(fetched.data).sort()).toEqual(propertiesOf('DeployKey'));
    const { repository, ...rest } = fetched.data;
    expect(rest).toEqual(created.data);
    expect(repository).toMatchObject({
      full_name: 'acme/models',
      private: true,
      ssh_url: 'ssh://git@127.0.0.1:2222/acme/models.git',
      permissions: { admin: false, push: false, pull: true },
    });

    const listed = await api.repos.repoListKeys('acme', 'models');
    expectGiteaResponse(KEYS, 'get', 200, listed.data);
    expect(listed.data).toEqual([fetched.data]);

    const deleted = await api.repos.repoDeleteKey('acme', 'models', created.data.id!);
    expect(deleted.status).toBe(204);
    const gone = await failure(api.repos.repoGetKey('acme', 'models', created.data.id!));
    expect(gone.status).toBe(404);
    expectGiteaDefinition('APIError', gone.error);
    expect(gone.error).toEqual({ message: 'not found', url: `${gitea.url}/api/swagger` });
    // Gitea deletes idempotently: an id it does not know answers 204 too.
    expect((await api.repos.repoDeleteKey('acme', 'models', created.data.id!)).status).toBe(204);
    expect(state.listKeys(state.findRepository('acme/models')!.id)).toEqual([]);
  });

  it('creates a key that can push when read_only is left out, as Go zero values do', async () => {
    const created = await api.repos.repoCreateKey('acme', 'models', { title: 'rw', key: publicKey('rsa') });
    expect(created.data.read_only).toBe(false);
    const [listed] = (await api.repos.repoListKeys('acme', 'models')).data;
    expect(listed!.repository!.permissions).toEqual({ admin: false, push: true, pull: true });
  });

  it('lets one public key serve several repositories, each link with its own id and access', async () => {
    const key = publicKey('ec');
    const onModels = await api.repos.repoCreateKey('acme', 'models', {
      title: 'shared',
      key,
      read_only: true,
    });
    const onDatasets = await api.repos.repoCreateKey('acme', 'datasets', { title: 'shared', key });
    expect(onDatasets.data.key_id).toBe(onModels.data.key_id);
    expect(onDatasets.data.id).not.toBe(onModels.data.id);
    expect(onDatasets.data.read_only).toBe(false);

    const again = await failure(
      api.repos.repoCreateKey('acme', 'models', { title: 'other', key: `${key} c` }),
    );
    expect(again.status).toBe(422);
    expectGiteaResponse(KEYS, 'post', 422, again.error);
    expect(again.error.message).toBe('This key has already been added to this repository');
    const sameTitle = await failure(
      api.repos.repoCreateKey('acme', 'models', { title: 'shared', key: publicKey() }),
    );
    expect(sameTitle.error.message).toBe('A key with the same name already exists');

    const byKeyId = await api.repos.repoListKeys('acme', 'datasets', { key_id: onModels.data.key_id! });
    expect(byKeyId.data.map((listed) => listed.id)).toEqual([onDatasets.data.id]);

    // The public key is dropped with its last link; a fresh registration gets a new key_id.
    await api.repos.repoDeleteKey('acme', 'models', onModels.data.id!);
    await api.repos.repoDeleteKey('acme', 'datasets', onDatasets.data.id!);
    const fresh = await api.repos.repoCreateKey('acme', 'models', { title: 'shared', key });
    expect(fresh.data.key_id).not.toBe(onModels.data.key_id);
  });

  it('refuses a key that is some user’s SSH key', async () => {
    const key = publicKey();
    gitea.addUserKey(`${key} someone@laptop`);
    const refused = await failure(api.repos.repoCreateKey('acme', 'models', { title: 'x', key }));
    expect(refused.status).toBe(422);
    expect(refused.error.message).toBe('Key content has been used as non-deploy key');
  });

  it('pages with page and limit (default 30, at most 50) and reports X-Total-Count, but no Link', async () => {
    const total = 75;
    for (let i = 0; i < total; i += 1) {
      await api.repos.repoCreateKey('acme', 'models', { title: `k${i}`, key: publicKey(), read_only: true });
    }
    const first = await api.repos.repoListKeys('acme', 'models');
    expect(first.data).toHaveLength(30);
    expect(first.headers.get('x-total-count')).toBe(String(total));
    expect(first.headers.get('access-control-expose-headers')).toBe('X-Total-Count');
    expect(first.headers.get('link')).toBeNull();
    expect((await api.repos.repoListKeys('acme', 'models', { limit: 100 })).data).toHaveLength(50);

    const seen: number[] = [];
    for (let page = 1; seen.length < total; page += 1) {
      const { data } = await api.repos.repoListKeys('acme', 'models', { page, limit: 20 });
      expect(data.length).toBeGreaterThan(0);
      seen.push(...data.map((listed) => listed.id!));
    }
    expect(seen).toEqual(state.listKeys(state.findRepository('acme/models')!.id).map((key) => key.id));
    expect((await api.repos.repoListKeys('acme', 'models', { page: 5, limit: 20 })).data).toEqual([]);

    const one = first.data[3]!;
    const byFingerprint = await api.repos.repoListKeys('acme', 'models', { fingerprint: one.fingerprint! });
    expect(byFingerprint.data.map((listed) => listed.id)).toEqual([one.id]);
    expect(byFingerprint.headers.get('x-total-count')).toBe('1');
  });
});

describe('Gitea stand-in: what Gitea refuses to register', () => {
  const rsa1024 = publicKey('rsa', 1024);
  const [, ed25519Blob] = publicKey().split(' ');
  const dsa = (() => {
    const pem = generateKeyPairSync('dsa', { modulusLength: 1024, divisorLength: 160 })
      .publicKey.export({ type: 'spki', format: 'pem' })
      .toString();
    return sshpk.parseKey(pem, 'pem').toString('ssh').split(' ').slice(0, 2).join(' ');
  })();
  const privatePem = generateKeyPairSync('ed25519').privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  }) as string;
  const refusals: Array<[label: string, key: string, reason: string]> = [
    [
      'no base64',
      'hello world',
      'extractTypeFromBase64Key: invalid key format: illegal base64 data at input byte 4',
    ],
    [
      'unpadded base64',
      'ssh-ed25519 AAAAnotakey',
      'extractTypeFromBase64Key: invalid key format: illegal base64 data at input byte 8',
    ],
    [
      'a truncated key',
      'ssh-ed25519 AAAAAQ==',
      'extractTypeFromBase64Key: invalid key format: not enough length 1',
    ],
    ['a key under 4 bytes', 'ssh-ed25519 AAAA', 'extractTypeFromBase64Key: invalid key format: %!w(<nil>)'],
    [
      'a type that is not the key’s',
      `ssh-rsa ${ed25519Blob}`,
      'key type and content does not match: ssh-rsa - ssh-ed25519',
    ],
    ['a private key', privatePem, 'the provided key is a private key'],
    ['RSA-1024', rsa1024, 'key length is not enough: got 1024, needs 2047'],
    ['DSA', dsa, 'key type is not allowed: dsa'],
  ];

  it.each(refusals)('answers 422 "Invalid key content" for %s', async (_label, key, reason) => {
    const refused = await failure(api.repos.repoCreateKey('acme', 'models', { title: randomUUID(), key }));
    expect(refused.status).toBe(422);
    expectGiteaResponse(KEYS, 'post', 422, refused.error);
    expectGiteaDefinition('APIError', refused.error);
    expect(refused.error.message).toBe(`Invalid key content: ${reason}`);
  });

  it('accepts a PEM public key and stores it in OpenSSH form', async () => {
    const spki = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const created = await api.repos.repoCreateKey('acme', 'models', { title: 'pem', key: spki });
    expect(created.data.key).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\S+$/);
  });

  it('answers 422 for a missing title or key and for a mistyped field, with binding’s wording', async () => {
    const post = (body: string) =>
      fetch(`${gitea.apiUrl}/repos/acme/models/keys`, {
        method: 'POST',
        headers: { authorization: `token ${TOKEN}`, 'content-type': 'application/json' },
        body,
      });
    const cases: Array<[string, string]> = [
      [JSON.stringify({ key: publicKey() }), '[Title]: Required'],
      [JSON.stringify({ title: 'x', key: '' }), '[Key]: Required'],
      ['', '[Title]: Required'],
      [
        JSON.stringify({ title: 'x', key: publicKey(), read_only: 'yes' }),
        '[]: json: cannot unmarshal string into Go struct field CreateKeyOption.read_only of type bool',
      ],
      ['[]', '[]: json: cannot unmarshal array into Go value of type structs.CreateKeyOption'],
    ];
    for (const [body, message] of cases) {
      const response = await post(body);
      expect(response.status, body).toBe(422);
      expect(await response.json()).toEqual({ message, url: `${gitea.url}/api/swagger` });
    }
    expect((await post('{"title": ')).status).toBe(422);
    expect(state.listKeys(state.findRepository('acme/models')!.id)).toEqual([]);
  });
});
