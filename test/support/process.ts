import { spawn } from 'node:child_process';

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Both streams as they arrived, as a CI job's log shows them. */
  output: string;
}

/** Runs a program to its end with exactly `env`, and collects what it printed. */
export function runProcess(
  command: string,
  args: string[],
  { env, cwd }: { env: Record<string, string>; cwd?: string },
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, ...(cwd ? { cwd } : {}), stdio: ['ignore', 'pipe', 'pipe'] });
    const result = { stdout: '', stderr: '', output: '' };
    for (const stream of ['stdout', 'stderr'] as const) {
      child[stream].setEncoding('utf8').on('data', (chunk: string) => {
        result[stream] += chunk;
        result.output += chunk;
      });
    }
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, ...result }));
  });
}
