// The GitHub Actions runner's protocol, as @actions/core speaks it, without the dependency: inputs
// arrive as INPUT_<NAME>, files named by GITHUB_ENV / GITHUB_OUTPUT / GITHUB_STATE take
// `name<<delimiter` blocks, state comes back to the post step as STATE_<name>, and workflow commands
// (`::add-mask::`, `::error::`) are lines on stdout.
import { randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';

type Env = Record<string, string | undefined>;

export function getInput(name: string, env: Env = process.env): string {
  return (env[`INPUT_${name.replaceAll(' ', '_').toUpperCase()}`] ?? '').trim();
}

export function getState(name: string, env: Env = process.env): string {
  return env[`STATE_${name}`] ?? '';
}

// A heredoc block with a random delimiter, so no value can end the block early or add a variable.
function appendFileCommand(fileVariable: string, name: string, value: string, env: Env): void {
  const file = env[fileVariable];
  if (!file) throw new Error(`${fileVariable} is not set: this runs as a step of a GitHub Actions job`);
  const delimiter = `ghadelimiter_${randomUUID()}`;
  if (name.includes(delimiter) || value.includes(delimiter)) throw new Error('value contains the delimiter');
  appendFileSync(file, `${name}<<${delimiter}\n${value}\n${delimiter}\n`, 'utf8');
}

export function exportVariable(name: string, value: string, env: Env = process.env): void {
  appendFileCommand('GITHUB_ENV', name, value, env);
  process.env[name] = value;
}

export function setOutput(name: string, value: string, env: Env = process.env): void {
  appendFileCommand('GITHUB_OUTPUT', name, value, env);
}

export function saveState(name: string, value: string, env: Env = process.env): void {
  appendFileCommand('GITHUB_STATE', name, value, env);
}

// Percent, CR and LF are escaped in a command's data, as the runner expects.
const escapeData = (text: string) =>
  text.replaceAll('%', '%25').replaceAll('\r', '%0D').replaceAll('\n', '%0A');

/** The runner hides every later occurrence of each line of `secret` in the job's log. */
export function setSecret(secret: string): void {
  for (const line of secret.split('\n')) {
    if (line.trim()) process.stdout.write(`::add-mask::${escapeData(line.trim())}\n`);
  }
}

export function info(message: string): void {
  process.stdout.write(`${message}\n`);
}

export function setFailed(message: string): void {
  process.stdout.write(`::error::${escapeData(message)}\n`);
  process.exitCode = 1;
}
