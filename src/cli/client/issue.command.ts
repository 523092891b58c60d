import { createHash } from 'node:crypto';
import type { Delivery } from '../../model/schemas.ts';
import { DELIVERIES, JOB_ID_PATTERN, JOB_ID_RULE } from '../../model/values.ts';
import { parseDuration } from '../duration.ts';
import { UsageError } from '../usage-error.ts';
import { ClientError } from './client-error.ts';
import {
  CONNECTION_HELP,
  CONNECTION_OPTIONS,
  clientEnvironment,
  connect,
  parseCommandArgs,
  printJson,
} from './command-support.ts';
import { JOB_ID_SOURCES, jobIdFromEnvironment } from './environment.ts';
import { gitSshCommand, keyPaths, shellQuote, sshConfigText, writeKeyFiles } from './key-files.ts';
import {
  type IssuedKey,
  type IssueKeyRequest,
  type ServiceClient,
  ServiceProblem,
} from './service-client.ts';

export const ISSUE_USAGE = `usage: deploykey issue --provider P --repo R [--job J] [--ttl 2h] [--out DIR]
                       [--delivery response|wrapped|vault] [--json] [--url URL]

Gets a short-lived, read-only deploy key for one repository and writes what git needs into DIR
(made mode 0700): id_ed25519 (mode 0600), known_hosts and ssh_config. Prints on stdout the
GIT_SSH_COMMAND to export and the git clone line. Run again in the same job, it returns the same key.

options:
  --provider P      Git host id configured in the service (github, gitlab, gitea, …)
  --repo R          owner/name (GitHub, Gitea), or the GitLab project path
  --job J           the job the key is for
                    (default from ${JOB_ID_SOURCES})
  --ttl D           lifetime: 3600, 30m, 2h, 1d (default: the service's)
  --out DIR         where the files go (default: ./.deploykey)
  --delivery M      response: the key is written to DIR (default); vault: it stays in Vault and
                    its path is printed; wrapped: a single-use Vault wrap token is printed
  --json            one JSON object (keyId, cloneUrl, gitSshCommand, paths, expiresAt), never the key

${CONNECTION_HELP}

examples:
  eval "$(deploykey issue --provider github --repo acme/models)"   # exports GIT_SSH_COMMAND, clones
  deploykey issue --provider gitlab --repo acme/models --ttl 30m --json
  deploykey issue --provider gitea --repo acme/models --ttl 1h     # a self-hosted Gitea or Forgejo
  DEPLOYKEY_TOKEN=dkr_… deploykey issue --provider github --repo acme/models --job nightly-42 --out /tmp/k`;

// A retried step must reach the same key, so the Idempotency-Key depends only on what the key is for.
export function idempotencyKeyFor(jobId: string, provider: string, repository: string): string {
  const digest = createHash('sha256')
    .update(`deploykey-cli\0${jobId}\0${provider}\0${repository}`)
    .digest('hex');
  return `deploykey-cli-${digest.slice(0, 40)}`;
}

// The service answers every later request with a failed first one's key by refusing it; the next
// key in this fixed sequence starts afresh, and a later retry walks the same sequence to the same key.
const MAX_FRESH_STARTS = 5;

export async function issueIdempotently(client: ServiceClient, request: IssueKeyRequest) {
  const base = idempotencyKeyFor(request.jobId, request.provider, request.repository);
  for (let start = 0; ; start++) {
    try {
      return await client.issueKey(request, start === 0 ? base : `${base}.${start}`);
    } catch (error) {
      const failedBefore = error instanceof ServiceProblem && error.code === 'idempotent-request-failed';
      if (!failedBefore || start >= MAX_FRESH_STARTS) throw error;
      console.error(
        `deploykey: an earlier attempt for job ${request.jobId} failed (${error.message}); trying afresh`,
      );
    }
  }
}

export async function runIssueCommand(args: string[]): Promise<void> {
  const { values } = parseCommandArgs(
    {
      args,
      options: {
        ...CONNECTION_OPTIONS,
        provider: { type: 'string' },
        repo: { type: 'string' },
        job: { type: 'string' },
        ttl: { type: 'string' },
        out: { type: 'string' },
        delivery: { type: 'string' },
        json: { type: 'boolean' },
      },
    },
    ISSUE_USAGE,
  );
  if (!values.provider || !values.repo)
    throw new UsageError('issue needs --provider and --repo', ISSUE_USAGE);
  const ttlSeconds = values.ttl === undefined ? undefined : parseDuration(values.ttl);
  if (values.ttl !== undefined && !ttlSeconds) {
    throw new UsageError('--ttl takes a duration such as 3600, 30m, 2h or 1d', ISSUE_USAGE);
  }
  const delivery = (values.delivery ?? 'response') as Delivery;
  if (!DELIVERIES.includes(delivery)) {
    throw new UsageError(`--delivery must be one of ${DELIVERIES.join(', ')}`, ISSUE_USAGE);
  }
  const env = clientEnvironment(values);
  const jobId = values.job ?? jobIdFromEnvironment(env);
  if (!jobId) throw new UsageError(`--job is needed here (no ${JOB_ID_SOURCES} found)`, ISSUE_USAGE);
  if (!new RegExp(JOB_ID_PATTERN).test(jobId)) {
    throw new UsageError(`job id "${jobId}" ${JOB_ID_RULE}`, ISSUE_USAGE);
  }

  const client = await connect(values, env, ISSUE_USAGE);
  const request: IssueKeyRequest = {
    provider: values.provider,
    repository: values.repo,
    jobId,
    delivery,
    ...(ttlSeconds ? { ttlSeconds } : {}),
  };
  const { key, replayed } = await issueIdempotently(client, request).catch((error: unknown) => {
    // Policies keep keys out of responses unless a rule allows it, so the default can be refused.
    if (error instanceof ServiceProblem && error.body.reason === 'delivery-not-allowed' && !values.delivery) {
      throw new ClientError(
        `${error.message}; this caller may not receive the key in the response: use --delivery vault or wrapped`,
        error.exitCode,
      );
    }
    throw error;
  });
  await report(key, replayed, values.out ?? '.deploykey', values.json === true);
}

async function report(key: IssuedKey, replayed: boolean, outDir: string, json: boolean): Promise<void> {
  const paths = keyPaths(outDir);
  const sshCommand = gitSshCommand(paths);
  const written = key.privateKey !== undefined;
  await writeKeyFiles(paths, {
    ...(written ? { privateKey: key.privateKey } : {}),
    knownHosts: key.knownHosts,
    sshConfig: sshConfigText(
      paths,
      key.cloneUrl,
      `deploykey key ${key.id} for ${key.provider} ${key.repository}, job ${key.jobId}, expires ${key.expiresAt}`,
    ),
  });

  console.error(
    `deploykey: ${replayed ? 'reusing' : 'issued'} key ${key.id} for ${key.provider} ${key.repository} ` +
      `(job ${key.jobId}, expires ${key.expiresAt})${written ? `; wrote ${paths.dir}` : ''}`,
  );
  if (key.knownHosts.length === 0) {
    console.error(
      'deploykey: the service sent no known_hosts lines; ssh will refuse the host until they are added',
    );
  }
  if (key.vault && !written) {
    const target = key.wrapToken
      ? 'unwrap DEPLOYKEY_WRAP_TOKEN (single use)'
      : key.delivery === 'wrapped'
        ? // The service hands a wrap token out once; a retried request gets none.
          'use the wrap token the first request received (revoke this key and issue a new one if it is lost)'
        : `vault kv get -mount=${key.vault.mount} -field=ssh-privatekey ${key.vault.path}`;
    console.error(`deploykey: the key is not written here: ${target} > ${paths.privateKey} (mode 0600)`);
  }

  if (json) {
    printJson({
      keyId: key.id,
      provider: key.provider,
      repository: key.repository,
      jobId: key.jobId,
      delivery: key.delivery,
      cloneUrl: key.cloneUrl,
      gitSshCommand: sshCommand,
      paths: { ...paths, privateKey: written ? paths.privateKey : null },
      expiresAt: key.expiresAt,
      replayed,
      ...(key.vault && !written ? { vault: key.vault } : {}),
      ...(key.wrapToken ? { wrapToken: key.wrapToken } : {}),
    });
    return;
  }
  const lines: string[] = [];
  if (key.wrapToken) lines.push(`export DEPLOYKEY_WRAP_TOKEN=${shellQuote(key.wrapToken)}`);
  else if (key.vault && !written) {
    lines.push(`export DEPLOYKEY_VAULT_MOUNT=${shellQuote(key.vault.mount)}`);
    lines.push(`export DEPLOYKEY_VAULT_PATH=${shellQuote(key.vault.path)}`);
  }
  lines.push(`export GIT_SSH_COMMAND=${shellQuote(sshCommand)}`);
  // Only once the key file is in place can the clone work; otherwise the caller fetches it first.
  if (written) lines.push(`git clone ${shellQuote(key.cloneUrl)}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
