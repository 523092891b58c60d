// Which credential the client commands pick, from a given environment: the explicit token first, then
// GitHub Actions OIDC (over a real local HTTP endpoint shaped like GitHub's), GitLab CI, Kubernetes.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ClientError } from '../../src/cli/client/client-error.ts';
import { discoverCredential } from '../../src/cli/client/credentials.ts';
import { jobIdFromEnvironment, readClientEnvironment } from '../../src/cli/client/environment.ts';

const REQUEST_TOKEN = 'request-token-of-this-job';

let server: Server;
let base: string;
let dir: string;
let seen: IncomingMessage[] = [];
/** What the token endpoint answers next, in order; afterwards 200 with a token naming the audience. */
let answers: number[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    seen.push(request);
    const url = new URL(request.url ?? '/', 'http://localhost');
    const status =
      answers.shift() ?? (request.headers.authorization === `Bearer ${REQUEST_TOKEN}` ? 200 : 401);
    const body = status === 200 ? { count: 1, value: `jwt-for-${url.searchParams.get('audience')}` } : {};
    response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  dir = await mkdtemp(join(tmpdir(), 'credentials-'));
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  seen = [];
  answers = [];
});

const github = () => ({
  ACTIONS_ID_TOKEN_REQUEST_URL: `${base}/_apis/distributedtask/idtoken?api-version=2.0`,
  ACTIONS_ID_TOKEN_REQUEST_TOKEN: REQUEST_TOKEN,
});
const k8sFiles = () => [join(dir, 'projected'), join(dir, 'serviceaccount')];
const discover = (
  env: Record<string, string>,
  options: { gitlabTokenVar?: string; audience?: string } = {},
) =>
  discoverCredential(readClientEnvironment(options, env), {
    k8sTokenFiles: k8sFiles(),
    ...(options.audience ? { audience: options.audience } : {}),
  });

describe('credential discovery order', () => {
  it('takes DEPLOYKEY_TOKEN over everything else, without asking GitHub', async () => {
    await writeFile(k8sFiles()[0]!, 'k8s-token');
    const found = await discover({
      DEPLOYKEY_TOKEN: 'dkr_abc',
      ...github(),
      DEPLOYKEY_ID_TOKEN: 'gitlab-jwt',
    });
    expect(found).toEqual({ token: 'dkr_abc', source: 'DEPLOYKEY_TOKEN' });
    expect(seen).toEqual([]);
    await rm(k8sFiles()[0]!);
  });

  it('asks GitHub Actions the documented way, before a GitLab token', async () => {
    const found = await discover({ ...github(), DEPLOYKEY_ID_TOKEN: 'gitlab-jwt' });
    expect(found).toEqual({
      token: 'jwt-for-deploykey-rotator',
      source: 'GitHub Actions OIDC (ACTIONS_ID_TOKEN_REQUEST_URL)',
    });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.method).toBe('GET');
    expect(seen[0]!.url).toBe('/_apis/distributedtask/idtoken?api-version=2.0&audience=deploykey-rotator');
    expect(seen[0]!.headers.authorization).toBe(`Bearer ${REQUEST_TOKEN}`);
    expect(seen[0]!.headers.accept).toBe('application/json');
  });

  it('sends another audience encoded, and waits out a GitHub hiccup', async () => {
    answers = [503];
    const found = await discover(github(), { audience: 'https://deploykey.example/a b' });
    expect(found.token).toBe('jwt-for-https://deploykey.example/a b');
    expect(seen).toHaveLength(2);
    expect(seen[1]!.url).toBe(
      '/_apis/distributedtask/idtoken?api-version=2.0&audience=https%3A%2F%2Fdeploykey.example%2Fa%20b',
    );
  });

  it('says GitHub refused (exit 3) and hints at the id-token permission', async () => {
    const refused = discover({ ...github(), ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'stale' });
    await expect(refused).rejects.toBeInstanceOf(ClientError);
    await expect(refused).rejects.toMatchObject({
      exitCode: 3,
      message: expect.stringMatching(/HTTP 401.*permissions: id-token: write/),
    });
  });

  it('skips GitHub when only half of its variables are set, and takes the GitLab id token', async () => {
    const found = await discover({
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: REQUEST_TOKEN,
      DEPLOYKEY_ID_TOKEN: 'gitlab-jwt',
    });
    expect(found).toEqual({ token: 'gitlab-jwt', source: 'GitLab CI id token DEPLOYKEY_ID_TOKEN' });
    expect(seen).toEqual([]);
  });

  it('reads the GitLab id token from the variable --gitlab-token-var names, before a Kubernetes file', async () => {
    await writeFile(k8sFiles()[0]!, 'k8s-token');
    const env = { DEPLOYKEY_ID_TOKEN: 'not-this-one', VAULT_ID_TOKEN: 'gitlab-jwt' };
    const found = await discover(env, { gitlabTokenVar: 'VAULT_ID_TOKEN' });
    expect(found).toEqual({ token: 'gitlab-jwt', source: 'GitLab CI id token VAULT_ID_TOKEN' });
    await rm(k8sFiles()[0]!);
  });

  it('reads the first Kubernetes token file that exists and is not empty, trimmed', async () => {
    await writeFile(k8sFiles()[1]!, 'service-account-token\n');
    expect(await discover({})).toEqual({
      token: 'service-account-token',
      source: `Kubernetes token file ${k8sFiles()[1]}`,
    });
    await writeFile(k8sFiles()[0]!, '  \n');
    expect((await discover({})).token).toBe('service-account-token');
    await writeFile(k8sFiles()[0]!, 'projected-token\n');
    expect(await discover({ DEPLOYKEY_TOKEN: '   ' })).toEqual({
      token: 'projected-token',
      source: `Kubernetes token file ${k8sFiles()[0]}`,
    });
    await rm(k8sFiles()[0]!);
    await rm(k8sFiles()[1]!);
  });

  it('finding nothing is exit 3, naming every place it looked', async () => {
    const nothing = discover({ HOME: '/root' }, { gitlabTokenVar: 'CUSTOM_ID_TOKEN' });
    await expect(nothing).rejects.toMatchObject({ exitCode: 3 });
    const message = await nothing.catch((error: Error) => error.message);
    for (const place of [
      'DEPLOYKEY_TOKEN',
      'ACTIONS_ID_TOKEN_REQUEST_URL + ACTIONS_ID_TOKEN_REQUEST_TOKEN',
      'CUSTOM_ID_TOKEN',
      ...k8sFiles(),
    ]) {
      expect(message).toContain(place);
    }
  });
});

describe('the job id from the environment', () => {
  const jobOf = (env: Record<string, string>) => jobIdFromEnvironment(readClientEnvironment({}, env));

  it('is the GitHub run and attempt, the GitLab job, or the pod name, in that order', () => {
    expect(jobOf({ GITHUB_RUN_ID: '9001', GITHUB_RUN_ATTEMPT: '2', CI_JOB_ID: '77' })).toBe('9001-2');
    expect(jobOf({ GITHUB_RUN_ID: '9001' })).toBe('9001-1');
    expect(jobOf({ CI_JOB_ID: '77', HOSTNAME: 'trainer-x', KUBERNETES_SERVICE_HOST: '10.0.0.1' })).toBe('77');
    expect(jobOf({ HOSTNAME: 'trainer-x', KUBERNETES_SERVICE_HOST: '10.0.0.1' })).toBe('trainer-x');
  });

  it('is not a workstation host name outside a pod', () => {
    expect(jobOf({ HOSTNAME: 'laptop' })).toBeUndefined();
    expect(jobOf({})).toBeUndefined();
  });
});

it('reads the service URL and token, ignoring empty values', () => {
  const env = readClientEnvironment(
    {},
    { DEPLOYKEY_URL: ' https://deploykey.example ', DEPLOYKEY_TOKEN: '' },
  );
  expect(env.serviceUrl).toBe('https://deploykey.example');
  expect(env.token).toBeUndefined();
});
