// Runs a job of a GitLab CI configuration the way GitLab and its shell executor do: `spec:inputs`
// interpolated into `$[[ inputs.x ]]`, `extends:` merged, id_tokens minted for their `aud`,
// before_script and script in one bash with `set -eo pipefail`, after_script in a new bash
// afterwards whatever the outcome, with GitLab's predefined variables.
import { randomInt } from 'node:crypto';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { OidcStandIn } from '../../sandbox/oidc/stand-in.ts';
import { type ProcessResult, runProcess } from './process.ts';

export type GitlabJobDefinition = {
  extends?: string | string[];
  id_tokens?: Record<string, { aud: string }>;
  variables?: Record<string, string>;
  before_script?: string[];
  script?: string[];
  after_script?: string[];
};
export type Pipeline = Record<string, GitlabJobDefinition>;

/** A configuration file as `include:` brings it in: a `spec:` header's inputs interpolated first. */
export async function loadInclude(path: string, given: Record<string, string> = {}): Promise<Pipeline> {
  const text = await readFile(path, 'utf8');
  const documents = parseAllDocuments(text);
  if (documents.length === 1) return documents[0]!.toJS() as Pipeline;
  const spec = documents[0]!.toJS() as { spec: { inputs: Record<string, { default?: string } | null> } };
  const inputs = spec.spec.inputs;
  const unknown = Object.keys(given).filter((name) => !(name in inputs));
  if (unknown.length > 0) throw new Error(`unknown input ${unknown.join(', ')}`);
  const body = text.slice(text.indexOf('\n---\n') + 5);
  const interpolated = body.replace(/\$\[\[ inputs\.([\w-]+) \]\]/g, (_match, name: string) => {
    const value = given[name] ?? inputs[name]?.default;
    if (value === undefined) throw new Error(`input ${name} is required`);
    return value;
  });
  return parseAllDocuments(interpolated)[0]!.toJS() as Pipeline;
}

/** `extends:` resolved: hashes merged deeply, everything else (arrays too) replaced by the job's own. */
export function resolveJob(pipeline: Pipeline, name: string): GitlabJobDefinition {
  const job = pipeline[name];
  if (!job) throw new Error(`no job ${name}`);
  const parents = job.extends === undefined ? [] : [job.extends].flat();
  const merge = (base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> => {
    const out = { ...base };
    for (const [key, value] of Object.entries(over)) {
      const before = out[key];
      const bothHashes = [before, value].every((v) => v && typeof v === 'object' && !Array.isArray(v));
      out[key] = bothHashes
        ? merge(before as Record<string, unknown>, value as Record<string, unknown>)
        : value;
    }
    return out;
  };
  let resolved: Record<string, unknown> = {};
  for (const parent of parents) resolved = merge(resolved, resolveJob(pipeline, parent));
  const { extends: _, ...own } = job;
  return merge(resolved, own) as GitlabJobDefinition;
}

export interface GitlabJobRun {
  script: ProcessResult;
  afterScript: ProcessResult;
  jobId: string;
  projectDir: string;
}

export interface GitlabJobContext {
  oidc: OidcStandIn;
  projectPath: string;
  /** Extra environment, e.g. PATH with a client on it, or the project's CI/CD variables. */
  env?: Record<string, string>;
  /** Claims of the job's id tokens beyond those GitLab derives from the project. */
  claims?: Record<string, unknown>;
}

const bash = (lines: string[], env: Record<string, string>, cwd: string) =>
  runProcess('bash', ['-c', ['set -eo pipefail', ...lines].join('\n')], { env, cwd });

export async function runGitlabJob(
  job: GitlabJobDefinition,
  context: GitlabJobContext,
): Promise<GitlabJobRun> {
  const builds = await mkdtemp(join(tmpdir(), 'gitlab-builds-'));
  const projectName = context.projectPath.split('/').at(-1)!;
  const projectDir = join(builds, context.projectPath);
  await mkdir(projectDir, { recursive: true });
  const jobId = String(randomInt(1e9, 2 ** 40));
  const idTokens: Record<string, string> = {};
  for (const [name, { aud }] of Object.entries(job.id_tokens ?? {})) {
    idTokens[name] = await context.oidc.mint(
      'gitlab-ci',
      { project_path: context.projectPath, job_id: jobId, ...context.claims },
      { audience: aud },
    );
  }
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: builds,
    CI: 'true',
    GITLAB_CI: 'true',
    CI_JOB_ID: jobId,
    CI_PROJECT_PATH: context.projectPath,
    CI_PROJECT_NAME: projectName,
    CI_PROJECT_DIR: projectDir,
    CI_BUILDS_DIR: builds,
    CI_SERVER_FQDN: 'gitlab.example.com',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    ...job.variables,
    ...context.env,
    ...idTokens,
  };
  const script = await bash([...(job.before_script ?? []), ...(job.script ?? [])], env, projectDir);
  const afterScript = await bash(job.after_script ?? [], env, projectDir);
  return { script, afterScript, jobId, projectDir };
}
