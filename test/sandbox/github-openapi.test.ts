// The GitHub stand-in walked along GitHub's own OpenAPI description: every route it serves is a
// documented operation (the App routes by their own cut of it, test/fixtures/github-apps), served
// at the root and under /api/v3 alike; every answer has a documented status, body and headers; and
// every request that clients send it (Octokit's REST methods, @octokit/core raw requests, and this
// service's own GitHub adapter) is one GitHub documents, parameters and body included.
import { generateKeyPairSync } from 'node:crypto';
import { Octokit as CoreOctokit } from '@octokit/core';
import { Octokit } from '@octokit/rest';
import sshpk from 'sshpk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type GithubStandIn, type SeenRequest, startGithubStandIn } from '../../sandbox/github/stand-in.ts';
import { createHostState, type HostState } from '../../sandbox/shared/host-state.ts';
import { createHost } from '../../src/hosts/host-registry.ts';
import { createLogger } from '../../src/log.ts';
import { createMetrics } from '../../src/metrics.ts';
import { systemClock, systemTimers } from '../../src/time.ts';
import { appOperationFor, documentedAppOperations } from '../support/github-apps.ts';
import {
  documentedOperations,
  expectDocumentedRequest,
  expectDocumentedResponse,
  operationFor,
} from '../support/github-openapi.ts';
import { isDocumentedActionsOrHooksRoute } from '../support/github-schemas.ts';

const TOKEN = 'ghp_openapiConformanceToken0000000000';
const ENTERPRISE_PREFIX = '/api/v3';
const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

function publicKey(): string {
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const [type, data] = sshpk.parsePrivateKey(pem, 'pem').toPublic().toString('ssh').split(' ');
  return `${type} ${data}`;
}

let state: HostState;
let github: GithubStandIn;
let seen: SeenRequest[];

beforeAll(async () => {
  state = createHostState('github');
  state.addRepository('acme/models', '/srv/git/acme/models.git');
  const hostKey = publicKey();
  github = await startGithubStandIn({
    state,
    tokens: [TOKEN],
    sshHostKeys: () => [hostKey],
    sshCloneUrl: (path) => `ssh://git@127.0.0.1:2222/${path}.git`,
    onRequestSeen: (request) => seen.push(request),
  });
});
beforeEach(() => {
  seen = [];
});
afterAll(() => github.close());

async function send(
  base: string,
  method: string,
  path: string,
  options: { token?: boolean; body?: unknown } = {},
) {
  const url = `${base}${path}`;
  const response = await fetch(url, {
    method,
    headers: {
      accept: 'application/vnd.github+json',
      ...(options.token === false ? {} : { authorization: `Bearer ${TOKEN}` }),
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await response.text();
  const answer = {
    status: response.status,
    headers: response.headers,
    body: text === '' ? undefined : JSON.parse(text),
  };
  return { ...answer, operationId: expectDocumentedResponse(method, url, answer) };
}

/** Each documented operation the stand-in serves, driven to every documented status it can give. */
async function walk(base: string): Promise<Set<string>> {
  const covered = new Set<string>();
  const record = <T extends { operationId: string; status: number }>(answer: T, status: number): T => {
    expect(answer.status).toBe(status);
    covered.add(answer.operationId);
    return answer;
  };
  record(await send(base, 'GET', '/', { token: false }), 200);
  record(await send(base, 'GET', '/meta', { token: false }), 200);
  record(await send(base, 'GET', '/rate_limit'), 200);
  record(await send(base, 'GET', '/user'), 200);
  record(await send(base, 'GET', '/user', { token: false }), 401);
  const repository = record(await send(base, 'GET', '/repos/acme/models'), 200);
  expect(repository.body.id).toBe(state.findRepository('acme/models')!.id);
  record(await send(base, 'GET', '/repos/acme/absent'), 404);

  const keys = '/repos/acme/models/keys';
  const created = record(
    await send(base, 'POST', keys, { body: { title: 'walk', key: publicKey(), read_only: true } }),
    201,
  );
  record(await send(base, 'POST', keys, { body: { key: 'not a key' } }), 422);
  record(await send(base, 'GET', `${keys}?per_page=1&page=1`), 200);
  record(await send(base, 'GET', `${keys}/${created.body.id}`), 200);
  record(await send(base, 'DELETE', `${keys}/${created.body.id}`), 204);
  record(await send(base, 'GET', `${keys}/${created.body.id}`), 404);
  return covered;
}

describe('GitHub stand-in along GitHub’s OpenAPI description', () => {
  it('serves only documented operations, and the walk below reaches each of them', async () => {
    const covered = await walk(github.url);
    const served = new Set<string>();
    const appOperations = new Set<string>();
    const atRoot = new Set<string>();
    const underEnterprise = new Set<string>();
    for (const route of github.routes) {
      // HEAD twins of GET routes, the sandbox's own controls and GitHub's undocumented by-id alias;
      // the Actions and hook routes are held to their own description by the Actions suites, the
      // App routes to theirs by the App suites.
      if (
        route.method === 'HEAD' ||
        route.url.startsWith('/_sandbox/') ||
        route.url.includes('/repositories/')
      ) {
        continue;
      }
      const path = route.url.replace(/:(\w+)/g, 'x');
      const found = operationFor(route.method, path);
      const app = found ? undefined : appOperationFor(route.method, path);
      if (!found && !app && isDocumentedActionsOrHooksRoute(route.method, path)) continue;
      const operation = found ? `${route.method} ${found.template}` : app;
      expect(operation, `${route.method} ${route.url} is documented`).toBeDefined();
      (found ? served : appOperations).add(operation!);
      const enterprise = route.url === ENTERPRISE_PREFIX || route.url.startsWith(`${ENTERPRISE_PREFIX}/`);
      (enterprise ? underEnterprise : atRoot).add(operation!);
    }
    expect([...served].sort()).toEqual(documentedOperations().sort());
    expect([...appOperations].sort()).toEqual(documentedAppOperations().sort());
    // What is served at the root is served under /api/v3 as well, as on a GitHub Enterprise Server.
    expect([...underEnterprise].sort()).toEqual([...atRoot].sort());
    const operations = documentedOperations().map((entry) => {
      const [method, template] = entry.split(' ');
      return operationFor(method!, template!.replace(/\{\w+\}/g, 'x'))!.operation.operationId;
    });
    expect([...covered].sort()).toEqual(operations.sort());
  });

  it('answers the same under /api/v3, as a GitHub Enterprise Server does, with URLs there', async () => {
    const covered = await walk(`${github.url}/api/v3`);
    expect(covered.size).toBe(documentedOperations().length);
    const repository = await send(`${github.url}/api/v3`, 'GET', '/repos/acme/models');
    expect(repository.body.url).toBe(`${github.url}/api/v3/repos/acme/models`);
    expect(repository.body.ssh_url).toBe('ssh://git@127.0.0.1:2222/acme/models.git');
    const root = await send(`${github.url}/api/v3`, 'GET', '/', { token: false });
    expect(root.body.rate_limit_url).toBe(`${github.url}/api/v3/rate_limit`);
  });

  it('sends GitHub’s headers: request id, rate limits, scopes and API version', async () => {
    const answer = await send(github.url, 'GET', '/repos/acme/models');
    expect(answer.headers.get('x-github-request-id')).toMatch(/^[0-9A-F]{4}(:[0-9A-F]+){4}$/);
    expect(answer.headers.get('x-ratelimit-resource')).toBe('core');
    expect(answer.headers.get('x-oauth-scopes')).toContain('repo');
    expect(answer.headers.get('x-github-api-version-selected')).toBe('2022-11-28');
    expect(answer.headers.get('content-type')).toBe('application/json; charset=utf-8');

    // `GET /rate_limit` reports the core standing without spending a request of it.
    const before = Number((await send(github.url, 'GET', '/rate_limit')).body.resources.core.used);
    const after = await send(github.url, 'GET', '/rate_limit');
    expect(after.body.resources.core.used).toBe(before);
    expect(after.headers.get('x-ratelimit-used')).toBe(String(before));
  });
});

describe('requests clients send, held to GitHub’s request schemas', () => {
  it('@octokit/rest: the first calls and a deploy-key cycle, also against /api/v3', async () => {
    for (const baseUrl of [github.url, `${github.url}/api/v3`]) {
      const octokit = new Octokit({ auth: TOKEN, baseUrl, log: quiet });
      expect((await octokit.rest.meta.root()).data.current_user_url).toBe(`${baseUrl}/user`);
      expect((await octokit.rest.users.getAuthenticated()).data.login).toBe('sandbox-admin');
      expect((await octokit.rest.rateLimit.get()).data.rate.limit).toBe(5000);
      expect((await octokit.rest.repos.get({ owner: 'acme', repo: 'models' })).data.default_branch).toBe(
        'main',
      );
      const repo = { owner: 'acme', repo: 'models' };
      const created = await octokit.rest.repos.createDeployKey({
        ...repo,
        title: 'rest',
        key: publicKey(),
        read_only: true,
      });
      const listed = await octokit.paginate(octokit.rest.repos.listDeployKeys, { ...repo, per_page: 100 });
      expect(listed.map((key) => key.id)).toEqual([created.data.id]);
      await octokit.rest.repos.getDeployKey({ ...repo, key_id: created.data.id });
      await octokit.rest.repos.deleteDeployKey({ ...repo, key_id: created.data.id });
    }
    expect(seen.length).toBe(16);
    for (const request of seen) expectDocumentedRequest(request);
  });

  it('@octokit/core raw requests, as its README writes them', async () => {
    const octokit = new CoreOctokit({ auth: TOKEN, baseUrl: github.url, log: quiet });
    const created = await octokit.request('POST /repos/{owner}/{repo}/keys', {
      owner: 'acme',
      repo: 'models',
      title: 'core',
      key: publicKey(),
      read_only: true,
      headers: { 'X-GitHub-Api-Version': '2022-11-28' },
    });
    expect(created.status).toBe(201);
    const listed = await octokit.request('GET /repos/{owner}/{repo}/keys', {
      owner: 'acme',
      repo: 'models',
      per_page: 10,
    });
    expect(listed.data.map((key) => key.id)).toEqual([created.data.id]);
    await octokit.request('DELETE /repos/{owner}/{repo}/keys/{key_id}', {
      owner: 'acme',
      repo: 'models',
      key_id: created.data.id,
    });
    expect(seen.map(expectDocumentedRequest)).toEqual([
      'repos/create-deploy-key',
      'repos/list-deploy-keys',
      'repos/delete-deploy-key',
    ]);
  });

  it('this service’s own GitHub adapter sends only documented requests', async () => {
    const host = createHost(
      { id: 'gh', type: 'github', apiUrl: github.url, sshUrl: 'ssh://git@127.0.0.1:2222', token: TOKEN },
      {
        metrics: createMetrics(),
        logger: createLogger('silent'),
        clock: systemClock,
        timers: systemTimers,
        retry: { maxRetries: 0, backoffBaseMs: 1 },
      },
    );
    const added = await host.addDeployKey({
      repository: 'acme/models',
      title: 'deploykey-rotator:conformance',
      publicKey: `${publicKey()} deploykey-rotator`,
      expiresAt: new Date(Date.now() + 600_000),
      caller: 'conformance',
    });
    expect((await host.listDeployKeys('acme/models')).map((key) => key.hostKeyId)).toEqual([added.hostKeyId]);
    expect(await host.deleteDeployKey('acme/models', added.hostKeyId)).toBe('deleted');
    expect(await host.deleteDeployKey('acme/models', added.hostKeyId)).toBe('already-gone');
    expect((await host.knownHosts()).length).toBeGreaterThan(0);

    expect(seen.map(expectDocumentedRequest)).toEqual([
      'repos/create-deploy-key',
      'repos/list-deploy-keys',
      'repos/delete-deploy-key',
      'repos/delete-deploy-key',
      'meta/get',
    ]);
    // Invariant 4 on the wire: the key is asked for read-only, never left to GitHub's read-write default.
    expect(seen[0]!.body).toMatchObject({ read_only: true });
  });
});
