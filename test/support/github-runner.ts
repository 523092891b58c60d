// Runs this repository's GitHub Action the way GitHub's runner does: the inputs as INPUT_* (with
// action.yml's defaults, `${{ github.* }}` filled in), the job's OIDC token from an
// ACTIONS_ID_TOKEN_REQUEST_URL endpoint, GITHUB_ENV / GITHUB_OUTPUT / GITHUB_STATE files between
// steps, the state handed to `post` as STATE_*, and `post` run whatever `main` did.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { OidcStandIn } from '../../sandbox/oidc/stand-in.ts';
import { type ProcessResult, runProcess } from './process.ts';

const ACTION_DIR = fileURLToPath(new URL('../../action/', import.meta.url));

export interface TokenEndpoint {
  requestUrl: string;
  requestToken: string;
  /** The audiences asked for, in order. */
  audiences: string[];
  close(): Promise<void>;
}

/** GitHub's token endpoint: the request token as bearer, `audience` in the query, `{ value }` back. */
export async function startTokenEndpoint(
  oidc: OidcStandIn,
  claims: Record<string, unknown>,
): Promise<TokenEndpoint> {
  const requestToken = `ghs_${randomBytes(16).toString('hex')}`;
  const audiences: string[] = [];
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const send = (status: number, body: unknown) =>
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    const audience = url.searchParams.get('audience');
    if (request.headers.authorization !== `Bearer ${requestToken}`)
      return send(401, { message: 'Unauthorized' });
    if (url.searchParams.get('api-version') !== '2.0' || !audience)
      return send(400, { message: 'Bad request' });
    audiences.push(audience);
    oidc.mint('github-actions', claims, { audience }).then(
      (value) => send(200, { value }),
      (error: Error) => send(500, { message: error.message }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    requestUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/_apis/pipelines/idtoken?api-version=2.0`,
    requestToken,
    audiences,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** `name<<delimiter` blocks and `name=value` lines, as the runner reads GITHUB_ENV and friends. */
export function parseFileCommands(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const end = lines.indexOf(heredoc[2]!, i + 1);
      if (end === -1) throw new Error(`unterminated ${heredoc[1]} block`);
      values[heredoc[1]!] = lines.slice(i + 1, end).join('\n');
      i = end;
    } else if (line.includes('=')) {
      values[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
    }
  }
  return values;
}

export interface ActionRun {
  main: ProcessResult;
  post: ProcessResult;
  /** What main wrote to GITHUB_ENV, GITHUB_OUTPUT and GITHUB_STATE. */
  env: Record<string, string>;
  outputs: Record<string, string>;
  state: Record<string, string>;
  runnerTemp: string;
}

export interface GithubJob {
  repository: string;
  runId: string;
  tokens: TokenEndpoint;
  /** Where RUNNER_TEMP points (default: a fresh directory). */
  runnerTemp?: string;
}

const runStep = (script: string, env: Record<string, string>) =>
  runProcess(process.execPath, [join(ACTION_DIR, script)], { env });

/** INPUT_* as the runner sets them: each input given in `with:`, else action.yml's default. */
export async function actionInputs(
  given: Record<string, string>,
  job: GithubJob,
): Promise<Record<string, string>> {
  const manifest = parse(await readFile(join(ACTION_DIR, 'action.yml'), 'utf8')) as {
    inputs: Record<string, { default?: string }>;
  };
  const unknown = Object.keys(given).filter((name) => !(name in manifest.inputs));
  if (unknown.length > 0) throw new Error(`the action has no input ${unknown.join(', ')}`);
  const inputs: Record<string, string> = {};
  for (const [name, { default: fallback }] of Object.entries(manifest.inputs)) {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub expression, filled in as the runner does
    const value = given[name] ?? fallback?.replaceAll('${{ github.repository }}', job.repository);
    if (value !== undefined) inputs[`INPUT_${name.toUpperCase()}`] = value;
  }
  return inputs;
}

/** Runs `main`, then (as `post-if: always()` does) `post` with main's saved state. */
export async function runAction(
  with_: Record<string, string>,
  job: GithubJob,
  between?: (run: Omit<ActionRun, 'post'>) => Promise<void>,
): Promise<ActionRun> {
  const files = await mkdtemp(join(tmpdir(), 'github-runner-'));
  const runnerTemp = job.runnerTemp ?? (await mkdtemp(join(tmpdir(), 'runner-temp-')));
  const paths = {
    GITHUB_ENV: join(files, 'env'),
    GITHUB_OUTPUT: join(files, 'output'),
    GITHUB_STATE: join(files, 'state'),
  };
  for (const path of Object.values(paths)) await writeFile(path, '');
  const base = {
    PATH: process.env.PATH ?? '',
    HOME: runnerTemp,
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    GITHUB_REPOSITORY: job.repository,
    GITHUB_RUN_ID: job.runId,
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_JOB: 'train',
    RUNNER_TEMP: runnerTemp,
    ACTIONS_ID_TOKEN_REQUEST_URL: job.tokens.requestUrl,
    ACTIONS_ID_TOKEN_REQUEST_TOKEN: job.tokens.requestToken,
    ...(await actionInputs(with_, job)),
  };
  const main = await runStep('dist/main.mjs', { ...base, ...paths });
  const read = async (path: string) => parseFileCommands(await readFile(path, 'utf8'));
  const [env, outputs, state] = await Promise.all([
    read(paths.GITHUB_ENV),
    read(paths.GITHUB_OUTPUT),
    read(paths.GITHUB_STATE),
  ]);
  await between?.({ main, env, outputs, state, runnerTemp });
  const stateEnv = Object.fromEntries(Object.entries(state).map(([name, value]) => [`STATE_${name}`, value]));
  const post = await runStep('dist/post.mjs', {
    ...base,
    ...env,
    ...stateEnv,
    GITHUB_ENV: paths.GITHUB_ENV,
    GITHUB_OUTPUT: paths.GITHUB_OUTPUT,
  });
  return { main, post, env, outputs, state, runnerTemp };
}
