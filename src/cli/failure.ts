// How every `deploykey` entry point ends on an error: one line on stderr and an exit code that tells
// a script which kind of failure it was (usage 2, service or network 1, refused 3, not found 4).
import { ClientError } from './client/client-error.ts';
import { exitCodeOf } from './exit-codes.ts';
import { UsageError } from './usage-error.ts';

export function exitOnFailure(error: Error & { code?: string }, usage: string): never {
  if (error instanceof UsageError) {
    console.error(`deploykey: ${error.message}\n\n${error.usage ?? usage}`);
    process.exit(error.exitCode);
  }
  if (error instanceof ClientError) {
    console.error(`deploykey: ${error.message}`);
    process.exit(error.exitCode);
  }
  if (error.code?.startsWith('ERR_PARSE_ARGS')) {
    console.error(`deploykey: ${error.message}\n\n${usage}`);
    process.exit(2);
  }
  console.error(`deploykey: ${error.message}`);
  process.exit(exitCodeOf(error));
}
