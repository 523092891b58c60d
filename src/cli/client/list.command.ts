import { KEY_STATUSES } from '../../model/values.ts';
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

const STATUSES: readonly string[] = KEY_STATUSES;

export const LIST_USAGE = `usage: deploykey list [--job J] [--repo R] [--provider P] [--status S] [--json] [--url URL]

Lists the keys the caller may see (an issuer its own, an auditor or admin every key), newest
first, one per line: id, status, provider, repository, job, expiry.

options:
  --job J        only keys of this job
  --repo R       only keys for this repository
  --provider P   only keys on this Git host
  --status S     only keys in this state: ${STATUSES.join(', ')}
  --json         one JSON array of keys

${CONNECTION_HELP}

examples:
  deploykey list --status active
  deploykey list --repo acme/models --json`;

export async function runListCommand(args: string[]): Promise<void> {
  const { values } = parseCommandArgs(
    {
      args,
      options: {
        ...CONNECTION_OPTIONS,
        job: { type: 'string' },
        repo: { type: 'string' },
        provider: { type: 'string' },
        status: { type: 'string' },
        json: { type: 'boolean' },
      },
    },
    LIST_USAGE,
  );
  if (values.status && !STATUSES.includes(values.status)) {
    throw new UsageError(`--status must be one of ${STATUSES.join(', ')}`, LIST_USAGE);
  }
  const env = clientEnvironment(values);
  const client = await connect(values, env, LIST_USAGE);
  const keys = await client.listKeys({
    ...(values.job ? { jobId: values.job } : {}),
    ...(values.repo ? { repository: values.repo } : {}),
    ...(values.provider ? { provider: values.provider } : {}),
    ...(values.status ? { status: values.status } : {}),
  });
  if (values.json) {
    printJson(keys);
    return;
  }
  for (const key of keys) process.stdout.write(`${formatKeyLine(key)}\n`);
  if (keys.length === 0) console.error('deploykey: no keys match');
}
