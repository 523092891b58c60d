/**
 * `--help` or `-h` anywhere before `--` asks for the command's usage, whatever else is on the line:
 * someone who types it wants to read, not to have a half-typed command run or refused.
 */
export function helpRequested(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).some((arg) => arg === '--help' || arg === '-h');
}

/** Asked-for usage goes to stdout (so `| less` works); usage after a mistake goes to stderr. */
export function printUsage(usage: string): void {
  process.stdout.write(`${usage}\n`);
}
