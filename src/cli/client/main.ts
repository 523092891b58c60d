// Entry point of the lean client (`npm run build:client` bundles it into one file): only the
// commands that reach the service over HTTP, so a CI job installs no server dependencies.
import { exitOnFailure } from '../failure.ts';
import { helpRequested, printUsage } from '../help.ts';
import { UsageError } from '../usage-error.ts';
import { CLIENT_COMMAND_LINES, CLIENT_COMMANDS } from './commands.ts';

export const CLIENT_USAGE = `usage: deploykey <command> [options]

commands:
${CLIENT_COMMAND_LINES}

examples:
  eval "$(deploykey issue --provider github --repo acme/models)"
  deploykey complete`;

async function run([command, ...rest]: string[]): Promise<void> {
  if (command === undefined) throw new UsageError('missing command', CLIENT_USAGE);
  if (command === 'help' || command === '--help' || command === '-h') {
    printUsage(CLIENT_COMMANDS[rest[0] ?? '']?.usage ?? CLIENT_USAGE);
    return;
  }
  const found = CLIENT_COMMANDS[command];
  if (!found) throw new UsageError(`unknown command "${command}"`, CLIENT_USAGE);
  if (helpRequested(rest)) {
    printUsage(found.usage);
    return;
  }
  await found.run(rest);
}

run(process.argv.slice(2)).catch((error: Error) => exitOnFailure(error, CLIENT_USAGE));
