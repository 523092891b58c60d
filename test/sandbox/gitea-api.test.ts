import { generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { giteaApi } from 'gitea-js';
import sshpk from 'sshpk';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type GiteaStandIn, startGiteaStandIn } from '../../sandbox/gitea/stand-in.ts';
import { createHostState, type HostState } from '../../sandbox/shared/host-state.ts';
import {
  expectGiteaDefinition,
  expectGiteaResponse,
  GITEA_SWAGGER_PATH,
  propertiesOf,
} from '../support/gitea-swagger.ts';

const ADMIN_TOKEN = '1'.repeat(40);
const READER_TOKEN = '2'.repeat(40);
const READ_SCOPED_TOKEN = '3'.repeat(40);

function publicKey(): string {
  const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  return sshpk.parsePrivateKey(pem, 'pem').toPublic().toString('ssh').split(' ').slice(0, 2).join(' ');
}

let state: HostState;
let gitea: GiteaStandIn;

async function start(options: { disableQueryAuthToken?: boolean } = {}) {
  gitea = await startGiteaStandIn({
    state,
    tokens: [
      ADMIN_TOKEN,
      { token: READER_TOKEN, reader: true },
      { token: READ_SCOPED_TOKEN, scopes: ['read:repository'] },
    ],
    ...options,
  });
}

async function call(path: string, init: RequestInit & { token?: string } = {}) {
  const headers = new Headers(init.headers);
  if (init.token) headers.set('authorization', `token ${init.token}`);
  const response = await fetch(`${gitea.url}${path}`, { ...init, headers });
  const text = await response.text();
  const body = response.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : text;
  return { status: response.status, headers: response.headers, body };
}

const apiError = (message: string) => ({ message, url: `${gitea.url}/api/swagger` });
const createBody = () => JSON.stringify({ title: `t-${Math.random()}`, key: publicKey(), read_only: true });
const jsonPost = (token: string) => ({
  method: 'POST',
  token,
  headers: { 'content-type': 'application/json' },
  body: createBody(),
});

beforeEach(async () => {
  state = createHostState('gitea');
  state.addRepository('acme/models', '/srv/git/acme/models.git');
  await start();
});
afterEach(async () => {
  vi.useRealTimers();
  await gitea.close();
});

describe('Gitea stand-in: what clients ask first', () => {
  it('answers version, settings, the user and the repository as Gitea documents them', async () => {
    const api = giteaApi(gitea.url, { token: ADMIN_TOKEN });
    const version = await api.version.getVersion();
    expectGiteaResponse('/version', 'get', 200, version.data);
    expect(version.data).toEqual({ version: '1.27.1' });

    const settings = await api.settings.getGeneralApiSettings();
    expectGiteaResponse('/settings/api', 'get', 200, settings.data);
    expect(settings.data).toMatchObject({ max_response_items: 50, default_paging_num: 30 });
    expect(Object.keys(settings.data).sort()).toEqual(propertiesOf('GeneralAPISettings'));

    const user = await api.user.userGetCurrent();
    expectGiteaResponse('/user', 'get', 200, user.data);
    expect(user.data).toMatchObject({ login: 'sandbox-admin', is_admin: true });
    // Gitea adds `username` beside the documented fields for older clients.
    expect(Object.keys(user.data).sort()).toEqual([...propertiesOf('User'), 'username'].sort());

    const repository = await api.repos.repoGet('acme', 'models');
    expectGiteaResponse('/repos/{owner}/{repo}', 'get', 200, repository.data);
    expect(repository.data).toMatchObject({
      full_name: 'acme/models',
      private: true,
      default_branch: 'main',
    });
    expect(repository.data.permissions).toEqual({ admin: true, push: true, pull: true });
    const omittedWhenUnset = ['external_tracker', 'external_wiki', 'parent', 'repo_transfer'];
    expect(Object.keys(repository.data).sort()).toEqual(
      propertiesOf('Repository').filter((name) => !omittedWhenUnset.includes(name)),
    );
  });

  it('writes Gitea’s headers and serves the swagger description it is held to', async () => {
    const { headers } = await call('/api/v1/version');
    expect(headers.get('content-type')).toBe('application/json;charset=utf-8');
    expect(headers.get('cache-control')).toBe('max-age=0, private, must-revalidate');
    expect(headers.get('x-content-type-options')).toBe('nosniff');
    const swagger = await call('/swagger.v1.json');
    expect(swagger.status).toBe(200);
    expect(swagger.body).toEqual(JSON.parse(await readFile(GITEA_SWAGGER_PATH, 'utf8')));
  });
});

describe('Gitea stand-in: tokens', () => {
  it('takes the token as "token" or "Bearer" in any case, or in the query with Gitea’s warning', async () => {
    for (const authorization of [`token ${ADMIN_TOKEN}`, `Bearer ${ADMIN_TOKEN}`, `TOKEN ${ADMIN_TOKEN}`]) {
      const { status } = await call('/api/v1/repos/acme/models/keys', { headers: { authorization } });
      expect(status, authorization).toBe(200);
    }
    for (const name of ['token', 'access_token']) {
      const { status, headers } = await call(`/api/v1/user?${name}=${ADMIN_TOKEN}`);
      expect(status).toBe(200);
      expect(headers.get('x-gitea-warning')).toMatch(
        /^token and access_token API authentication is deprecated/,
      );
    }
  });

  it('ignores query tokens when DISABLE_QUERY_AUTH_TOKEN is set', async () => {
    await gitea.close();
    await start({ disableQueryAuthToken: true });
    expect(await call(`/api/v1/user?token=${ADMIN_TOKEN}`)).toMatchObject({
      status: 401,
      body: apiError('token is required'),
    });
  });

  it('refuses an unknown token everywhere with 401, and tells anonymous callers a private repository does not exist', async () => {
    const bad = await call('/api/v1/version', { token: 'f'.repeat(40) });
    expect(bad).toMatchObject({ status: 401, body: apiError('user does not exist [uid: 0, name: ]') });
    expectGiteaDefinition('APIError', bad.body);
    expect((await call('/api/v1/version')).status).toBe(200);
    expect(await call('/api/v1/user')).toMatchObject({ status: 401, body: apiError('token is required') });
    expect(await call('/api/v1/repos/acme/models/keys')).toMatchObject({
      status: 404,
      body: apiError('not found'),
    });
  });

  it('answers 403 to a collaborator who is no repository administrator, and to a token without the scope', async () => {
    const asReader = await call('/api/v1/repos/acme/models', { token: READER_TOKEN });
    expect(asReader.status).toBe(200);
    expect(asReader.body.permissions).toEqual({ admin: false, push: false, pull: true });
    const readerKeys = await call('/api/v1/repos/acme/models/keys', { token: READER_TOKEN });
    expect(readerKeys).toMatchObject({
      status: 403,
      body: apiError('user should be an owner or a collaborator with admin write of a repository'),
    });
    expectGiteaDefinition('APIError', readerKeys.body);

    expect((await call('/api/v1/repos/acme/models/keys', { token: READ_SCOPED_TOKEN })).status).toBe(200);
    const write = await call('/api/v1/repos/acme/models/keys', jsonPost(READ_SCOPED_TOKEN));
    expect(write).toMatchObject({
      status: 403,
      body: apiError(
        'token does not have at least one of required scope(s), required=[write:repository], token scope=read:repository',
      ),
    });
    expect((await call('/api/v1/user', { token: READ_SCOPED_TOKEN })).status).toBe(403);
    expect(state.listKeys(1)).toEqual([]);
  });
});

describe('Gitea stand-in: not found', () => {
  it('answers 404 "not found" for an unknown owner, repository, key or route', async () => {
    state.addRepository('acme/other', '/srv/git/acme/other.git');
    const created = await call('/api/v1/repos/acme/other/keys', jsonPost(ADMIN_TOKEN));
    expect(created.status).toBe(201);
    for (const path of [
      '/api/v1/repos/nobody/models/keys',
      '/api/v1/repos/acme/nothing/keys',
      `/api/v1/repos/acme/models/keys/${created.body.id}`,
      '/api/v1/repos/acme/models/keys/not-a-number',
      '/api/v1/nowhere',
    ]) {
      const response = await call(path, { token: ADMIN_TOKEN });
      expect(response, path).toMatchObject({ status: 404, body: apiError('not found') });
      expectGiteaDefinition('APIError', response.body);
    }
  });
});

describe('Gitea stand-in: faults and rate limiting', () => {
  const inject = (rule: object) =>
    fetch(`${gitea.url}/_sandbox/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(rule),
    });

  it('fails a write with an injected 500 in Gitea’s shape, then serves normally', async () => {
    expect((await inject({ status: 500, method: 'POST', count: 1 })).status).toBe(204);
    const failed = await call('/api/v1/repos/acme/models/keys', jsonPost(ADMIN_TOKEN));
    expect(failed).toMatchObject({ status: 500, body: apiError('') });
    expect((await call('/api/v1/repos/acme/models/keys', jsonPost(ADMIN_TOKEN))).status).toBe(201);
    expect(state.listKeys(1)).toHaveLength(1);
    expect(gitea.faults.stats().injected).toBe(1);
  });

  it('answers an injected 429 with Retry-After as a proxy in front of Gitea would', async () => {
    await inject({ status: 429, headers: { 'retry-after': '7' }, pathPrefix: '/api/v1/repos', count: 1 });
    const limited = await call('/api/v1/repos/acme/models/keys', jsonPost(ADMIN_TOKEN));
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('7');
    expect(limited.body).toBe('Rate limit exceeded, please try again later\n');
    expect(state.listKeys(1)).toEqual([]);
  });

  it('holds a request past the client’s timeout when told to delay', async () => {
    await inject({ latencyMs: 2_000, pathPrefix: '/api/v1/version', count: 1 });
    const timedOut = fetch(`${gitea.url}/api/v1/version`, { signal: AbortSignal.timeout(100) });
    await expect(timedOut).rejects.toMatchObject({ name: 'TimeoutError' });
  });

  it('limits each client per window with 429 and Retry-After, counting refused tokens too', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: new Date('2030-01-01T00:00:00Z') });
    gitea.setRateLimit({ requests: 3, windowSeconds: 60 });
    expect((await call('/api/v1/version', { token: 'f'.repeat(40) })).status).toBe(401);
    expect((await call('/api/v1/version')).status).toBe(200);
    expect((await call('/api/v1/repos/acme/models/keys', jsonPost(ADMIN_TOKEN))).status).toBe(201);
    vi.setSystemTime(new Date('2030-01-01T00:00:20Z'));
    const limited = await call('/api/v1/repos/acme/models/keys', jsonPost(ADMIN_TOKEN));
    expect(limited.status).toBe(429);
    expect(limited.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(limited.headers.get('retry-after')).toBe('40');
    expect(state.listKeys(1)).toHaveLength(1);

    vi.setSystemTime(new Date('2030-01-01T00:01:00Z'));
    expect((await call('/api/v1/repos/acme/models/keys', jsonPost(ADMIN_TOKEN))).status).toBe(201);
  });
});
