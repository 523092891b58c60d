// Every command and sub-command of `deploykey` answers --help (and -h) with its usage and an
// example on stdout and exit 0, and a command line it cannot run exits 2 with the usage on stderr.
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';

const COMMAND_LINES = [
  ['serve'],
  ['worker'],
  ['migrate'],
  ['token'],
  ['token', 'create'],
  ['token', 'list'],
  ['token', 'revoke'],
  ['policy'],
  ['policy', 'check'],
  ['audit'],
  ['audit', 'verify'],
  ['audit', 'export'],
  ['issue'],
  ['complete'],
  ['revoke'],
  ['list'],
  ['openapi'],
  ['sandbox'],
];

/** Runs the command lines a few at a time: each is a Node process on a shared 2-core machine. */
async function runAll(lines: string[][]) {
  const results = [];
  for (let i = 0; i < lines.length; i += 4) {
    results.push(...(await Promise.all(lines.slice(i, i + 4).map((args) => runCli(args, {}, 60_000)))));
  }
  return results;
}

describe('deploykey --help', () => {
  it('every command and sub-command prints its usage with an example and exits 0', async () => {
    const lines = COMMAND_LINES.map((line, i) => [...line, i % 2 === 0 ? '--help' : '-h']);
    const results = await runAll(lines);
    const wrong = results.flatMap((result, i) => {
      const [command] = COMMAND_LINES[i]!;
      const usage = new RegExp(`^usage: deploykey ${command === 'worker' ? 'serve' : command}\\b`);
      const ok =
        result.code === 0 &&
        usage.test(result.stdout) &&
        /\nexamples:\n {2}\S/.test(result.stdout) &&
        result.stderr === '';
      return ok
        ? []
        : [{ args: lines[i]!.join(' '), code: result.code, stderr: result.stderr.slice(0, 200) }];
    });
    expect(wrong).toEqual([]);
  }, 240_000);

  it('help with no command, and help COMMAND, print the usage and exit 0', async () => {
    const [top, helpIssue] = await runAll([['--help'], ['help', 'issue']]);
    expect(top!.code).toBe(0);
    expect(top!.stdout).toMatch(/^usage: deploykey <command>/);
    for (const command of new Set(COMMAND_LINES.map(([c]) => c)))
      expect(top!.stdout).toContain(`  ${command}`);
    expect(helpIssue!.code).toBe(0);
    expect(helpIssue!.stdout).toMatch(/^usage: deploykey issue /);
  }, 120_000);
});

describe('deploykey usage errors', () => {
  it('no command, an unknown command or an unknown option exit 2 with the usage on stderr', async () => {
    const [none, unknown, badOption, badSubcommand] = await runAll([
      [],
      ['bogus'],
      ['serve', '--bogus'],
      ['token', 'bogus'],
    ]);
    expect(none!.code).toBe(2);
    expect(none!.stderr).toMatch(/^deploykey: missing command\n\nusage: deploykey <command>/);
    expect(unknown!.code).toBe(2);
    expect(unknown!.stderr).toMatch(/^deploykey: unknown command "bogus"\n/);
    expect(badOption!.code).toBe(2);
    expect(badOption!.stderr).toMatch(/^deploykey: Unknown option '--bogus'\n\nusage: deploykey serve /);
    expect(badSubcommand!.code).toBe(2);
    expect(badSubcommand!.stderr).toMatch(
      /^deploykey: unknown token command "bogus"\n\nusage: deploykey token /,
    );
    for (const result of [none, unknown, badOption, badSubcommand]) expect(result!.stdout).toBe('');
  }, 120_000);
});
