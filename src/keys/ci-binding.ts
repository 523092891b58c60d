// Which CI job a key belongs to, read from the caller's verified OIDC claims only. A webhook or the
// sweep later ends the key when that job ends, so a wrong binding would end (or keep) the wrong key:
// anything missing or malformed means no binding rather than a guessed one.
import type { KeyBinding } from '../model/schemas.ts';
import type { Caller } from './caller.ts';

/** The CI kinds of a key binding. */
export type CiBinding = Extract<KeyBinding, { kind: 'github-actions' | 'gitlab-ci' }>;

/** Configured issuer id → host id; issuers not listed use the host named like their platform. */
export type IssuerHosts = Readonly<Record<string, string>>;

const DEFAULT_HOST = { 'github-actions': 'github', 'gitlab-ci': 'gitlab' } as const;
const NUMERIC_ID = /^[1-9][0-9]{0,19}$/;
const PATH = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)+$/;

const id = (value: unknown): string | undefined => {
  const text = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
  return typeof text === 'string' && NUMERIC_ID.test(text) ? text : undefined;
};
const path = (value: unknown): string | undefined =>
  typeof value === 'string' && value.length <= 255 && PATH.test(value) ? value.toLowerCase() : undefined;

function githubBinding(claims: Record<string, unknown>, host: string): CiBinding | undefined {
  const repository = path(claims.repository);
  const runId = id(claims.run_id);
  const runAttempt = id(claims.run_attempt);
  if (!repository || !runId || !runAttempt) return undefined;
  const checkRunId = id(claims.check_run_id);
  return {
    kind: 'github-actions',
    host,
    repository,
    runId,
    runAttempt,
    ...(checkRunId ? { checkRunId } : {}),
  };
}

function gitlabBinding(claims: Record<string, unknown>, host: string): CiBinding | undefined {
  const project = path(claims.project_path);
  const jobId = id(claims.job_id);
  const pipelineId = id(claims.pipeline_id);
  if (!project || !jobId || !pipelineId) return undefined;
  return { kind: 'gitlab-ci', host, project, jobId, pipelineId };
}

/** The CI job an OIDC caller runs in; undefined for API tokens and non-CI issuers. */
export function ciBindingOf(caller: Caller, issuerHosts: IssuerHosts = {}): CiBinding | undefined {
  const kind = caller.details.kind;
  if (kind !== 'github-actions' && kind !== 'gitlab-ci') return undefined;
  const host = issuerHosts[caller.subject.issuer] ?? DEFAULT_HOST[kind];
  const claims = caller.subject.claims;
  return kind === 'github-actions' ? githubBinding(claims, host) : gitlabBinding(claims, host);
}
