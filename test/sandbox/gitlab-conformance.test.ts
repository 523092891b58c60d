// The GitLab stand-in held to GitLab's documented API: every route it serves answers with the
// entity GitLab presents there (test/fixtures/gitlab-api.schema.json), with GitLab's headers, and
// works for two clients that were written against the real GitLab: gitbeaker and plain fetch
// following the curl examples of GitLab's API docs.
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Gitlab } from '@gitbeaker/rest';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import sshpk from 'sshpk';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type GitlabStandIn, startGitlabStandIn } from '../../sandbox/gitlab/stand-in.ts';
import { createHostState, type HostState, normalizeKeyBlob } from '../../sandbox/shared/host-state.ts';

const TOKEN = 'glpat-conformance-token';
const schemas = JSON.parse(
  readFileSync(new URL('../fixtures/gitlab-api.schema.json', import.meta.url), 'utf8'),
);
const ajv = new Ajv({ allErrors: true });
addFormats.default(ajv);
ajv.addKeyword('source');
ajv.addSchema(schemas, 'gitlab');

type Entity =
  | 'DeployKey'
  | 'DeployKeysProject'
  | 'DeployKeyWithProjects'
  | 'Project'
  | 'User'
  | 'Metadata'
  | 'Error';
function expectEntity(entity: Entity, body: unknown) {
  const validate = ajv.getSchema(`gitlab#/definitions/${entity}`)!;
  expect(validate(body), `${entity}: ${ajv.errorsText(validate.errors)}`).toBe(true);
}

function newPublicKey(): string {
  const { publicKey } = generateKeyPairSync('ed25519');
  const key = sshpk.parseKey(publicKey.export({ type: 'spki', format: 'pem' }), 'pem');
  key.comment = 'ci@runner';
  return key.toString('ssh');
}

let state: HostState;
let gitlab: GitlabStandIn;
let api: InstanceType<typeof Gitlab>;

/** A request as GitLab's docs write it with curl: the token in PRIVATE-TOKEN, JSON in and out. */
async function call(method: string, path: string, body?: unknown) {
  const response = await fetch(`${gitlab.url}${path}`, {
    method,
    headers: { 'PRIVATE-TOKEN': TOKEN, 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text === '' ? undefined : JSON.parse(text),
  };
}

beforeAll(async () => {
  state = createHostState('gitlab');
  for (const path of ['acme/models', 'acme/datasets', 'acme/tools'])
    state.addRepository(path, `/srv/${path}.git`);
  gitlab = await startGitlabStandIn({
    state,
    tokens: [TOKEN],
    sshCloneUrl: (path) => `ssh://git@127.0.0.1:2222/${path}.git`,
  });
  api = new Gitlab({ host: gitlab.url.replace(/\/api\/v4$/, ''), token: TOKEN });
});
afterEach(() => {
  for (const repository of state.listRepositories()) {
    for (const key of state.listKeys(repository.id)) state.deleteKey(repository.id, key.id);
  }
});
afterAll(() => gitlab.close());

describe('GitLab stand-in: media types and request bodies', () => {
  it('labels every JSON answer exactly application/json, as GitLab does', async () => {
    const created = await call('POST', '/projects/acme%2Fmodels/deploy_keys', {
      title: 't',
      key: newPublicKey(),
    });
    const answers = [
      created,
      await call('GET', '/projects/acme%2Fmodels/deploy_keys'),
      await call('GET', `/projects/acme%2Fmodels/deploy_keys/${created.body.id}`),
      await call('GET', '/projects/acme%2Fmissing'),
      await call('GET', '/version'),
    ];
    expect(answers.map((answer) => answer.status)).toEqual([201, 200, 200, 404, 200]);
    for (const answer of answers) expect(answer.headers.get('content-type')).toBe('application/json');
  });

  it('removes a key on a bodiless DELETE that declares a JSON body (204), as GitLab does', async () => {
    const created = await call('POST', '/projects/acme%2Fmodels/deploy_keys', {
      title: 't',
      key: newPublicKey(),
    });
    const removed = await call('DELETE', `/projects/acme%2Fmodels/deploy_keys/${created.body.id}`);
    expect(removed.status).toBe(204);
    expect(state.listKeys(state.findRepository('acme/models')!.id)).toEqual([]);
  });

  it('takes form-encoded bodies too, and refuses malformed JSON with 400', async () => {
    const form = await fetch(`${gitlab.url}/projects/acme%2Fmodels/deploy_keys`, {
      method: 'POST',
      headers: { 'PRIVATE-TOKEN': TOKEN },
      body: new URLSearchParams({ title: 'form', key: newPublicKey(), can_push: 'false' }),
    });
    expect(form.status).toBe(201);
    expectEntity('DeployKeysProject', await form.json());

    const malformed = await fetch(`${gitlab.url}/projects/acme%2Fmodels/deploy_keys`, {
      method: 'POST',
      headers: { 'PRIVATE-TOKEN': TOKEN, 'Content-Type': 'application/json' },
      body: '{"title":',
    });
    expect(malformed.status).toBe(400);
    expectEntity('Error', await malformed.json());
  });
});

describe('GitLab stand-in: one key, many projects (DeployKeysProject)', () => {
  it('links a key another project already uses under that key’s id and title', async () => {
    const key = newPublicKey();
    const original = await call('POST', '/projects/acme%2Fmodels/deploy_keys', { title: 'original', key });
    const joined = await call('POST', '/projects/acme%2Fdatasets/deploy_keys', { title: 'other', key });
    expect(joined.status).toBe(201);
    expectEntity('DeployKeysProject', joined.body);
    expect(joined.body).toEqual({ ...original.body, can_push: false });
    expect((await call('GET', `/projects/acme%2Fdatasets/deploy_keys/${original.body.id}`)).body.id).toBe(
      original.body.id,
    );

    // Removing it from one project leaves it on the other; removing the last link deletes it.
    expect((await call('DELETE', `/projects/acme%2Fmodels/deploy_keys/${original.body.id}`)).status).toBe(
      204,
    );
    expect(state.authorize(normalizeKeyBlob(key), 'acme/datasets', false)).toBe('allowed');
    expect(state.authorize(normalizeKeyBlob(key), 'acme/models', false)).toBe('no-access');
    expect((await call('DELETE', `/projects/acme%2Fdatasets/deploy_keys/${original.body.id}`)).status).toBe(
      204,
    );
    expect(state.keyLinks(original.body.id)).toEqual([]);
    const gone = await call('POST', `/projects/acme%2Ftools/deploy_keys/${original.body.id}/enable`);
    expect(gone).toMatchObject({ status: 404, body: { message: '404 Deploy key Not Found' } });
  });

  it('enables an existing key on another project with 201 and the DeployKey entity, idempotently', async () => {
    const created = await call('POST', '/projects/acme%2Fmodels/deploy_keys', {
      title: 'shared',
      key: newPublicKey(),
      can_push: true,
    });
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const enabled = await call('POST', `/projects/acme%2Fdatasets/deploy_keys/${created.body.id}/enable`);
      expect(enabled.status).toBe(201);
      expectEntity('DeployKey', enabled.body);
      expect(enabled.body.id).toBe(created.body.id);
    }
    const listed = await call('GET', '/projects/acme%2Fdatasets/deploy_keys');
    // A key enabled on a project is read-only there until someone grants it write access.
    expect(listed.body).toEqual([{ ...created.body, can_push: false }]);
  });

  it('updates the title for every project and can_push for one project (PUT)', async () => {
    const created = await call('POST', '/projects/acme%2Fmodels/deploy_keys', {
      title: 'before',
      key: newPublicKey(),
    });
    await call('POST', `/projects/acme%2Fdatasets/deploy_keys/${created.body.id}/enable`);

    const updated = await call('PUT', `/projects/acme%2Fmodels/deploy_keys/${created.body.id}`, {
      title: 'after',
      can_push: true,
    });
    expect(updated.status).toBe(200);
    expectEntity('DeployKeysProject', updated.body);
    expect(updated.body).toMatchObject({ id: created.body.id, title: 'after', can_push: true });
    const elsewhere = await call('GET', `/projects/acme%2Fdatasets/deploy_keys/${created.body.id}`);
    expect(elsewhere.body).toMatchObject({ title: 'after', can_push: false });

    const nothing = await call('PUT', `/projects/acme%2Fmodels/deploy_keys/${created.body.id}`, {});
    expect(nothing).toMatchObject({
      status: 400,
      body: { error: 'title, can_push are missing, at least one parameter must be provided' },
    });
    const missing = await call('PUT', '/projects/acme%2Fmodels/deploy_keys/1', { title: 'x' });
    expect(missing).toMatchObject({ status: 404, body: { message: '404 Not found' } });
  });

  it('lists every deploy key with the projects using it, for an administrator (GET /deploy_keys)', async () => {
    const created = await call('POST', '/projects/acme%2Fmodels/deploy_keys', {
      title: 'all',
      key: newPublicKey(),
    });
    await call('POST', `/projects/acme%2Fdatasets/deploy_keys/${created.body.id}/enable`);
    await call('PUT', `/projects/acme%2Fdatasets/deploy_keys/${created.body.id}`, { can_push: true });

    const listed = await call('GET', '/deploy_keys');
    expect(listed.status).toBe(200);
    expect(listed.headers.get('x-total')).toBe('1');
    for (const item of listed.body) expectEntity('DeployKeyWithProjects', item);
    expect(
      listed.body[0].projects_with_readonly_access.map(
        (p: { path_with_namespace: string }) => p.path_with_namespace,
      ),
    ).toEqual(['acme/models']);
    expect(
      listed.body[0].projects_with_write_access.map(
        (p: { path_with_namespace: string }) => p.path_with_namespace,
      ),
    ).toEqual(['acme/datasets']);
    expect((await call('GET', '/deploy_keys?public=true')).body).toEqual([]);
  });
});

describe('GitLab stand-in: the calls clients make first', () => {
  it('answers GET /projects/:id, /user, /version and /metadata with GitLab’s entities', async () => {
    const project = await call('GET', '/projects/acme%2Fmodels');
    expectEntity('Project', project.body);
    expect(project.body).toMatchObject({
      path_with_namespace: 'acme/models',
      default_branch: 'main',
      ssh_url_to_repo: 'ssh://git@127.0.0.1:2222/acme/models.git',
      namespace: { full_path: 'acme', kind: 'group' },
    });
    expect((await call('GET', `/projects/${project.body.id}`)).body.id).toBe(project.body.id);
    expectEntity('User', (await call('GET', '/user')).body);
    for (const path of ['/version', '/metadata']) expectEntity('Metadata', (await call('GET', path)).body);
  });

  it('refuses them without a token (401) and names an unknown project (404) in GitLab words', async () => {
    for (const path of ['/user', '/version', '/projects/acme%2Fmodels', '/deploy_keys']) {
      const response = await fetch(`${gitlab.url}${path}`);
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({ message: '401 Unauthorized' });
    }
    expect(await call('GET', '/projects/acme%2Fnope')).toMatchObject({
      status: 404,
      body: { message: '404 Project Not Found' },
    });
  });

  it('sends the headers GitLab sends: request id, runtime, cache control and pagination', async () => {
    for (let index = 0; index < 3; index += 1) {
      await call('POST', '/projects/acme%2Fmodels/deploy_keys', { title: `h${index}`, key: newPublicKey() });
    }
    const page = await call('GET', '/projects/acme%2Fmodels/deploy_keys?per_page=2');
    const id = page.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9A-Z]{26}$/);
    expect(JSON.parse(page.headers.get('x-gitlab-meta')!)).toEqual({ correlation_id: id, version: '1' });
    expect(Number(page.headers.get('x-runtime'))).toBeGreaterThanOrEqual(0);
    expect(page.headers.get('cache-control')).toBe('max-age=0, private, must-revalidate');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect({
      total: page.headers.get('x-total'),
      totalPages: page.headers.get('x-total-pages'),
      next: page.headers.get('x-next-page'),
      perPage: page.headers.get('x-per-page'),
    }).toEqual({ total: '3', totalPages: '2', next: '2', perPage: '2' });
  });
});

describe('GitLab stand-in through gitbeaker', () => {
  it('runs create, list, show, edit, enable, admin list and remove, and the first calls', async () => {
    const key = newPublicKey();
    const created = await api.DeployKeys.create('acme/models', 'gitbeaker', key, { canPush: false });
    expectEntity('DeployKeysProject', created);
    expect((await api.DeployKeys.all({ projectId: 'acme/models' })).map((k) => k.id)).toEqual([created.id]);
    expect(await api.DeployKeys.show('acme/models', created.id)).toEqual(created);
    const edited = await api.DeployKeys.edit('acme/models', created.id, { title: 'renamed' });
    expect(edited).toMatchObject({ id: created.id, title: 'renamed', can_push: false });
    const enabled = await api.DeployKeys.enable('acme/tools', created.id);
    expect(enabled).toMatchObject({ id: created.id, title: 'renamed' });
    const everything = await api.DeployKeys.all();
    expect(everything.map((k) => k.id)).toEqual([created.id]);
    await api.DeployKeys.remove('acme/models', created.id);
    await api.DeployKeys.remove('acme/tools', created.id);
    expect(state.keyLinks(created.id)).toEqual([]);

    expect((await api.Projects.show('acme/models')).path_with_namespace).toBe('acme/models');
    expect((await api.Users.showCurrentUser()).username).toBe('sandbox-admin');
    expect((await api.Metadata.show()).version).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
