// Every command and sub-command of `deploykey` answers --help (and -h) with its usage and an
// example on stdout and exit 0, and a command line it cannot run exits 2 with the usage on stderr.
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';

/**
 * The command lines to check, read from the top-level usage (`deploykey --help`) so that a command
 * added there is covered here without editing this file: each command, and for one whose line
 * starts with its sub-commands ("token create|list|revoke", "webhook print --host ID"), each of them.
 */
function commandLines(topUsage: string): string[][] {
  const table = /\ncommands:\n([\s\S]*?)\n\n/.exec(topUsage)?.[1] ?? '';
  return table.split('\n').flatMap((row) => {
    // A row is the command's syntax, then two or more spaces, then what it does.
    const syntax = row.trim().split(/\s{2,}/)[0]!;
    const [command, first] = syntax.split(' ') as [string, string | undefined];
    const subcommands = first && /^[a-z]+(\|[a-z]+)*$/.test(first) ? first.split('|') : [];
    return [[command], ...subcommands.map((sub) => [command, sub])];
  });
}

// The command lines listed in `deploykey --help`, and that output itself.
let listed: string[][];
let topHelp: Awaited<ReturnType<typeof runCli>>;

beforeAll(async () => {
  topHelp = await runCli(['--help'], {}, 60_000);
  listed = commandLines(topHelp.stdout);
}, 60_000);

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
    const lines = listed.map((line, i) => [...line, i % 2 === 0 ? '--help' : '-h']);
    const results = await runAll(lines);
    const wrong = results.flatMap((result, i) => {
      const [command] = listed[i]!;
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

  it('help with no command lists every command and its sub-commands, and help COMMAND prints its usage; both exit 0', async () => {
    expect(topHelp.code).toBe(0);
    expect(topHelp.stdout).toMatch(/^usage: deploykey <command>/);
    // What the other tests walk through: the service's commands, the client's, and their sub-commands.
    expect(listed).toEqual(
      expect.arrayContaining([
        ['serve'],
        ['worker'],
        ['migrate'],
        ['token', 'create'],
        ['token', 'list'],
        ['token', 'revoke'],
        ['policy', 'check'],
        ['audit', 'verify'],
        ['audit', 'export'],
        ['issue'],
        ['complete'],
        ['revoke'],
        ['list'],
        ['openapi'],
        ['webhook'],
        ['webhook', 'print'],
        ['sandbox'],
      ]),
    );
    const [helpIssue] = await runAll([['help', 'issue']]);
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

  it('every command and sub-command refuses an unknown option, and every command with sub-commands an unknown one, with exit 2 and its usage on stderr', async () => {
    const withSubcommands = new Set(listed.filter((line) => line.length > 1).map(([c]) => c!));
    const lines = [
      ...listed.map((line) => [...line, '--bogus']),
      ...[...withSubcommands].map((command) => [command, 'bogus']),
    ];
    const results = await runAll(lines);
    const wrong = results.flatMap((result, i) => {
      const [command] = lines[i]!;
      const usage = new RegExp(`\n\nusage: deploykey ${command === 'worker' ? 'serve' : command}\\b`);
      const ok =
        result.code === 2 &&
        result.stdout === '' &&
        result.stderr.startsWith('deploykey: ') &&
        usage.test(result.stderr);
      return ok
        ? []
        : [{ args: lines[i]!.join(' '), code: result.code, stderr: result.stderr.slice(0, 200) }];
    });
    expect(wrong).toEqual([]);
  }, 240_000);
});
