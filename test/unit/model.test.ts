// A delivery, a key state, a job id and a host id are each declared once (src/model/), so every place
// a user can give one takes and refuses the same values: the config file, each API route that reads
// it, and the client command. Runs the real app offline (nothing behind it), which validates requests
// before any handler needs Postgres, Redis or Vault.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Authenticator } from '../../src/auth/authenticator.ts';
import { runIssueCommand } from '../../src/cli/client/issue.command.ts';
import { runListCommand } from '../../src/cli/client/list.command.ts';
import { type OfflineApp, openOfflineApp } from '../../src/cli/openapi.command.ts';
import { loadFileConfig } from '../../src/config.ts';
import { KEY_TRANSITIONS } from '../../src/keys/key-lifecycle.ts';
import type { Role } from '../../src/model/schemas.ts';
import { DELIVERIES, JOB_ID_RULE } from '../../src/model/values.ts';

type Verdict = 'takes' | 'refuses';

let offline: OfflineApp;
let configDir: string;

// The bearer token names the caller's role; authentication itself is not what is tested here.
const callerWithRole: Authenticator = async (request) => {
  const role = (request.headers.authorization ?? '').replace(/^Bearer /, '') as Role;
  const subject = { issuer: 'api-token', tokenName: role, claims: {} };
  return { id: `token:${role}`, actor: `token:${role}`, role, subject, details: {} };
};

beforeAll(async () => {
  offline = await openOfflineApp({ authenticate: callerWithRole });
  configDir = await mkdtemp(join(tmpdir(), 'dkr-model-'));
});

afterAll(async () => {
  await offline?.close();
  if (configDir) await rm(configDir, { recursive: true, force: true });
});

interface ApiRequest {
  role: Role;
  method: 'GET' | 'POST';
  url: string;
  payload?: Record<string, unknown>;
}

const issue = (fields: Record<string, unknown>): ApiRequest => ({
  role: 'issuer',
  method: 'POST',
  url: '/v1/keys',
  payload: { provider: 'github', repository: 'acme/models', jobId: 'build-42', ...fields },
});
const get = (role: Role, url: string): ApiRequest => ({ role, method: 'GET', url });
const post = (role: Role, url: string): ApiRequest => ({ role, method: 'POST', url, payload: {} });

/** Whether the API refuses the request as invalid at `field`, and the detail it gives. */
async function apiVerdict(request: ApiRequest, field: string): Promise<{ verdict: Verdict; detail: string }> {
  const { role, ...rest } = request;
  const answer = await offline.app.inject({ ...rest, headers: { authorization: `Bearer ${role}` } });
  const body = answer.json() as { code?: string; detail?: string; errors?: { pointer: string }[] };
  const refused =
    answer.statusCode === 400 &&
    body.code === 'validation-failed' &&
    (body.errors ?? []).some((error) => error.pointer === `/${field}`);
  return { verdict: refused ? 'refuses' : 'takes', detail: body.detail ?? '' };
}

let configFiles = 0;
async function configVerdict(file: Record<string, unknown>): Promise<Verdict> {
  const path = join(configDir, `config-${++configFiles}.yaml`);
  await writeFile(path, JSON.stringify(file));
  try {
    loadFileConfig({ DEPLOYKEY_CONFIG: path });
    return 'takes';
  } catch {
    return 'refuses';
  }
}

/** Whether the client command stops with `refusal`; "not-a-url" stops it before any network. */
async function clientVerdict(
  run: (args: string[]) => Promise<void>,
  args: string[],
  refusal: string,
): Promise<Verdict> {
  const message = await run([...args, '--url', 'not-a-url']).then(
    () => '',
    (error: Error) => error.message,
  );
  return message.includes(refusal) ? 'refuses' : 'takes';
}

const CLIENT_ISSUE = ['--provider', 'github', '--repo', 'acme/models'];

const policyWith = (delivery: string) => ({
  policy: [
    {
      name: 'ci',
      match: { issuer: 'api-token' },
      allow: { providers: ['*'], repositories: ['*'], deliveries: [delivery] },
    },
  ],
});

describe('the model, as each edge applies it', () => {
  it('a delivery: the policy file, the issue API and the client take exactly the same ones', async () => {
    for (const delivery of [...DELIVERIES, 'email', 'Vault', 'wrapped-token', '']) {
      const expected: Verdict = (DELIVERIES as readonly string[]).includes(delivery) ? 'takes' : 'refuses';
      const clientArgs = [...CLIENT_ISSUE, '--job', 'build-42', '--delivery', delivery];
      const verdicts = {
        policy: await configVerdict(policyWith(delivery)),
        api: (await apiVerdict(issue({ delivery }), 'delivery')).verdict,
        client: await clientVerdict(runIssueCommand, clientArgs, '--delivery must be one of'),
      };
      expect(verdicts, `delivery "${delivery}"`).toEqual({
        policy: expected,
        api: expected,
        client: expected,
      });
    }
  });

  it('a job id: every API route that reads one and the client refuse the same ones, in the same words', async () => {
    const taken = ['build-42', 'run:7.1_a', 'x'.repeat(128)];
    const refused = ['.', '..', 'x'.repeat(129), 'a/b', 'job 42', 'büild'];
    for (const jobId of [...taken, ...refused]) {
      const expected: Verdict = taken.includes(jobId) ? 'takes' : 'refuses';
      const inUrl = encodeURIComponent(jobId);
      const requests = [
        issue({ jobId }),
        get('issuer', `/v1/keys?jobId=${inUrl}`),
        get('auditor', `/v1/audit/events?jobId=${inUrl}`),
      ];
      // A dot segment never reaches the route at all; every other id does.
      if (jobId !== '.' && jobId !== '..') requests.push(post('issuer', `/v1/jobs/${inUrl}/complete`));
      const answers = await Promise.all(requests.map((request) => apiVerdict(request, 'jobId')));
      const client = await clientVerdict(runIssueCommand, [...CLIENT_ISSUE, '--job', jobId], JOB_ID_RULE);

      expect([...answers.map((answer) => answer.verdict), client], `job id "${jobId}"`).toEqual(
        [...answers, client].map(() => expected),
      );
      if (expected === 'refuses') {
        for (const answer of answers) expect(answer.detail).toContain(JOB_ID_RULE);
      }
    }
  });

  it('a key state: the API and the client list keys by exactly the states the lifecycle moves keys through', async () => {
    const lifecycleStates = [...new Set(KEY_TRANSITIONS.flatMap(({ from, to }) => [from, to]))].sort();
    const takenBy = { api: [] as string[], client: [] as string[] };
    for (const status of [...lifecycleStates, 'deleted', 'ACTIVE', 'expired']) {
      const api = await apiVerdict(get('auditor', `/v1/keys?status=${status}`), 'status');
      if (api.verdict === 'takes') takenBy.api.push(status);
      const client = await clientVerdict(runListCommand, ['--status', status], '--status must be one of');
      if (client === 'takes') takenBy.client.push(status);
    }
    expect(takenBy).toEqual({ api: lifecycleStates, client: lifecycleStates });
  });

  it('a host id: one the config file refuses for a host, the API refuses as a provider or webhook host', async () => {
    const taken = ['github', 'gitlab-eu', 'g', `g${'h'.repeat(31)}`];
    const refused = ['GitHub', '1github', 'git_hub', `g${'h'.repeat(32)}`];
    for (const id of [...taken, ...refused]) {
      const expected: Verdict = taken.includes(id) ? 'takes' : 'refuses';
      const host = { id, type: 'github', apiUrl: 'https://api.github.com', sshUrl: 'ssh://git@github.com' };
      const verdicts = {
        config: await configVerdict({ hosts: [host] }),
        issue: (await apiVerdict(issue({ provider: id }), 'provider')).verdict,
        list: (await apiVerdict(get('auditor', `/v1/keys?provider=${id}`), 'provider')).verdict,
        webhook: (await apiVerdict(post('issuer', `/v1/webhooks/gitlab/${id}`), 'hostId')).verdict,
      };
      expect(verdicts, `host id "${id}"`).toEqual({
        config: expected,
        issue: expected,
        list: expected,
        webhook: expected,
      });
    }
  });
});
