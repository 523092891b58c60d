import { JOB_ID_PATTERN, JOB_ID_RULE } from '../../model/values.ts';
import { UsageError } from '../usage-error.ts';
import {
  CONNECTION_HELP,
  CONNECTION_OPTIONS,
  clientEnvironment,
  connect,
  formatKeyLine,
  parseCommandArgs,
  printJson,
} from './command-support.ts';
import { JOB_ID_SOURCES, jobIdFromEnvironment } from './environment.ts';

export const COMPLETE_USAGE = `usage: deploykey complete [--job J] [--json] [--url URL]

Tells the service the job is done: every live key issued for it is revoked now (at the Git host
and in Vault) instead of at its expiry. Prints the affected keys, one per line.

options:
  --job J    the finished job (default from ${JOB_ID_SOURCES})
  --json     the service's answer as one JSON object: { jobId, keys }

${CONNECTION_HELP}

examples:
  deploykey complete                      # last step of a GitHub Actions or GitLab CI job
  deploykey complete --job nightly-42 --json`;

export async function runCompleteCommand(args: string[]): Promise<void> {
  const { values } = parseCommandArgs(
    { args, options: { ...CONNECTION_OPTIONS, job: { type: 'string' }, json: { type: 'boolean' } } },
    COMPLETE_USAGE,
  );
  const env = clientEnvironment(values);
  const jobId = values.job ?? jobIdFromEnvironment(env);
  if (!jobId) throw new UsageError(`complete needs --job (no ${JOB_ID_SOURCES} found)`, COMPLETE_USAGE);
  if (!new RegExp(JOB_ID_PATTERN).test(jobId)) {
    throw new UsageError(`job id "${jobId}" ${JOB_ID_RULE}`, COMPLETE_USAGE);
  }
  const client = await connect(values, env, COMPLETE_USAGE);
  const done = await client.completeJob(jobId);
  if (values.json) {
    printJson(done);
    return;
  }
  for (const key of done.keys) process.stdout.write(`${formatKeyLine(key)}\n`);
  console.error(`deploykey: job ${jobId} complete; ${done.keys.length} key(s) being revoked`);
}
