// The Action's `main` step: gets the job's OIDC token, a read-only deploy key for one repository,
// writes it under RUNNER_TEMP and exports GIT_SSH_COMMAND for the job's later steps. What the `post`
// step needs to revoke the key is saved first, so that it revokes even when this step fails midway.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { discoverCredential } from '../cli/client/credentials.ts';
import { readClientEnvironment } from '../cli/client/environment.ts';
import { issueIdempotently } from '../cli/client/issue.command.ts';
import { gitSshCommand, keyPaths, sshConfigText, writeKeyFiles } from '../cli/client/key-files.ts';
import { createServiceClient } from '../cli/client/service-client.ts';
import { parseDuration } from '../cli/duration.ts';
import { JOB_ID_PATTERN, JOB_ID_RULE } from '../model/values.ts';
import { exportVariable, getInput, info, saveState, setFailed, setOutput, setSecret } from './runner.ts';

const env = process.env;

function required(value: string | undefined, what: string): string {
  if (!value) throw new Error(`${what} is not set`);
  return value;
}

/**
 * One id per use of the Action: the jobs of a run, and the legs of a matrix, share the run id, and
 * one job's `post` step must not revoke the key another job is still cloning with.
 */
function jobIdFor(given: string): string {
  const jobId =
    given ||
    [
      required(env.GITHUB_RUN_ID, 'GITHUB_RUN_ID'),
      env.GITHUB_RUN_ATTEMPT || '1',
      (env.GITHUB_JOB || 'job').replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64),
      randomBytes(4).toString('hex'),
    ].join('-');
  if (!new RegExp(JOB_ID_PATTERN).test(jobId)) throw new Error(`input job "${jobId}" ${JOB_ID_RULE}`);
  return jobId;
}

async function main(): Promise<void> {
  const url = getInput('url') || env.DEPLOYKEY_URL || '';
  if (!/^https?:\/\/[^\s/]+/.test(url)) throw new Error('input url must be the service, http(s)://…');
  const provider = getInput('provider') || 'github';
  const repository = getInput('repository') || required(env.GITHUB_REPOSITORY, 'GITHUB_REPOSITORY');
  const ttl = getInput('ttl');
  const ttlSeconds = ttl ? parseDuration(ttl) : undefined;
  if (ttl && !ttlSeconds) throw new Error(`input ttl "${ttl}" is not a duration such as 3600, 30m or 2h`);
  const audience = getInput('audience') || 'deploykey-rotator';
  const jobId = jobIdFor(getInput('job'));
  const dir = join(required(env.RUNNER_TEMP, 'RUNNER_TEMP'), `deploykey-${randomBytes(6).toString('hex')}`);
  for (const [name, value] of Object.entries({ jobId, url, audience, dir })) saveState(name, value);

  const credential = await discoverCredential(readClientEnvironment(), { audience, k8sTokenFiles: [] });
  setSecret(credential.token);
  const client = createServiceClient({ baseUrl: url, credential });
  const { key, replayed } = await issueIdempotently(client, {
    provider,
    repository,
    jobId,
    delivery: 'response',
    ...(ttlSeconds ? { ttlSeconds } : {}),
  });
  const privateKey = required(
    key.privateKey,
    'the service sent no private key; its policy must allow delivery "response"',
  );
  setSecret(
    privateKey
      .split('\n')
      .filter((line) => !line.startsWith('-----'))
      .join('\n'),
  );

  const paths = keyPaths(dir);
  const comment = `deploykey key ${key.id} for ${key.provider} ${key.repository}, job ${jobId}, expires ${key.expiresAt}`;
  await writeKeyFiles(paths, {
    privateKey,
    knownHosts: key.knownHosts,
    sshConfig: sshConfigText(paths, key.cloneUrl, comment),
  });
  const sshCommand = gitSshCommand(paths);
  exportVariable('GIT_SSH_COMMAND', sshCommand);
  for (const [name, value] of Object.entries({
    'key-id': key.id,
    'clone-url': key.cloneUrl,
    'ssh-command': sshCommand,
    'key-dir': paths.dir,
    'job-id': jobId,
    'expires-at': key.expiresAt,
  })) {
    setOutput(name, value);
  }
  info(
    `${replayed ? 'Reusing' : 'Issued'} deploy key ${key.id} for ${key.provider} ${key.repository} (read-only, expires ${key.expiresAt}).`,
  );
  info(`GIT_SSH_COMMAND is set for the next steps: git clone ${key.cloneUrl}`);
  info('The post step of this job revokes the key, even if a later step fails.');
}

main().catch((error: Error) => setFailed(`deploykey: ${error.message}`));
