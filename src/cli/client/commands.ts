// The client commands a CI job or an operator runs against the service over HTTP. They need
// nothing but Node: the service's `deploykey` and the lean client bundle both dispatch through here.
import { COMPLETE_USAGE, runCompleteCommand } from './complete.command.ts';
import { ISSUE_USAGE, runIssueCommand } from './issue.command.ts';
import { LIST_USAGE, runListCommand } from './list.command.ts';
import { REVOKE_USAGE, runRevokeCommand } from './revoke.command.ts';

export const CLIENT_COMMANDS: Record<string, { usage: string; run(args: string[]): Promise<void> }> = {
  issue: { usage: ISSUE_USAGE, run: runIssueCommand },
  complete: { usage: COMPLETE_USAGE, run: runCompleteCommand },
  revoke: { usage: REVOKE_USAGE, run: runRevokeCommand },
  list: { usage: LIST_USAGE, run: runListCommand },
};

export const CLIENT_COMMAND_LINES = `  issue --provider P --repo R [--job J]           get a deploy key for a CI job (deploykey issue --help)
  complete [--job J]                              revoke the job's keys now that it is done
  revoke ID                                       revoke one key now
  list [--job J] [--repo R] [--status S]          list keys (these four reach the service at DEPLOYKEY_URL)`;
