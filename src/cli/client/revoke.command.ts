import { KEY_ID_PATTERN } from '../../model/values.ts';
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

export const REVOKE_USAGE = `usage: deploykey revoke ID [--json] [--url URL]

Revokes one key now, at the Git host and in Vault. The service finishes it in the background:
the key is printed as "revoking", and "deploykey list" shows it "revoked" moments later.

options:
  --json     the key as one JSON object

${CONNECTION_HELP}

examples:
  deploykey revoke 0b6f3c1e-8a51-4d0c-9d1e-5f4e2b7a9c10
  deploykey list --status active --repo acme/models --json | jq -r '.[].id' | xargs -n1 deploykey revoke`;

const KEY_ID = new RegExp(KEY_ID_PATTERN);

export async function runRevokeCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(
    { args, options: { ...CONNECTION_OPTIONS, json: { type: 'boolean' } }, allowPositionals: true },
    REVOKE_USAGE,
  );
  if (positionals.length !== 1) throw new UsageError('revoke needs exactly one key ID', REVOKE_USAGE);
  const id = positionals[0]!.toLowerCase();
  if (!KEY_ID.test(id)) throw new UsageError(`"${positionals[0]}" is not a key ID (a UUID)`, REVOKE_USAGE);
  const env = clientEnvironment(values);
  const client = await connect(values, env, REVOKE_USAGE);
  const key = await client.revokeKey(id);
  if (values.json) {
    printJson(key);
    return;
  }
  process.stdout.write(`${formatKeyLine(key)}\n`);
}
