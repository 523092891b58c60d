// Bare repositories served by the SSH git stand-in, built with the real `git` CLI.
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

// A fixed identity and no system/global config, so the seed commit does not depend on who runs it.
const gitEnv = (): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_AUTHOR_NAME: 'deploykey-rotator sandbox',
  GIT_AUTHOR_EMAIL: 'sandbox@deploykey-rotator.invalid',
  GIT_COMMITTER_NAME: 'deploykey-rotator sandbox',
  GIT_COMMITTER_EMAIL: 'sandbox@deploykey-rotator.invalid',
});

function git(args: string[], input?: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('git', args, { env: gitEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolvePromise(stdout.trim());
      else reject(new Error(`git ${args.join(' ')} exited with ${code}: ${stderr.trim()}`));
    });
    // A command that reads no input may exit before its stdin is closed; its exit code tells the story.
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

/** Creates a bare repository at <rootDir>/<path>.git seeded with one commit (a README naming the repo) on branch main; returns its absolute path. */
export async function createSeededBareRepo(rootDir: string, path: string): Promise<string> {
  const bareDir = resolve(rootDir, `${path}.git`);
  await mkdir(dirname(bareDir), { recursive: true });
  await git(['init', '--quiet', '--bare', '--initial-branch=main', bareDir]);
  // Plumbing writes the commit straight into the bare repository, so no work tree is needed.
  const blob = await git(['--git-dir', bareDir, 'hash-object', '-w', '--stdin'], `# ${path}\n`);
  const tree = await git(['--git-dir', bareDir, 'mktree'], `100644 blob ${blob}\tREADME.md\n`);
  const commit = await git(['--git-dir', bareDir, 'commit-tree', tree, '-m', `Initial commit of ${path}`]);
  await git(['--git-dir', bareDir, 'update-ref', 'refs/heads/main', commit]);
  return bareDir;
}
