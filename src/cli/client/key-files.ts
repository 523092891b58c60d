// The files a job clones with: the private key, the host's known_hosts and an ssh_config entry,
// and the GIT_SSH_COMMAND that uses them with host key checking on.
import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export interface KeyPaths {
  dir: string;
  privateKey: string;
  knownHosts: string;
  sshConfig: string;
}

export const shellQuote = (value: string) =>
  /^[\w./:=@%+,-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;

export function keyPaths(outDir: string): KeyPaths {
  const dir = resolve(outDir);
  return {
    dir,
    privateKey: join(dir, 'id_ed25519'),
    knownHosts: join(dir, 'known_hosts'),
    sshConfig: join(dir, 'ssh_config'),
  };
}

/** Git runs GIT_SSH_COMMAND through `sh`, so the paths in it are quoted for the shell. */
export function gitSshCommand(paths: KeyPaths): string {
  return [
    'ssh -i',
    shellQuote(paths.privateKey),
    '-o IdentitiesOnly=yes',
    `-o UserKnownHostsFile=${shellQuote(paths.knownHosts)}`,
    '-o StrictHostKeyChecking=yes',
  ].join(' ');
}

/** Host, port and user of `ssh://git@host:port/path` or scp-like `git@host:path`. */
export function sshTarget(cloneUrl: string): { host: string; port?: string; user?: string } | undefined {
  if (cloneUrl.startsWith('ssh://')) {
    try {
      const url = new URL(cloneUrl);
      return {
        host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
        ...(url.port ? { port: url.port } : {}),
        ...(url.username ? { user: decodeURIComponent(url.username) } : {}),
      };
    } catch {
      return undefined;
    }
  }
  const scp = /^(?:([^@/]+)@)?([^:/]+):/.exec(cloneUrl);
  if (!scp?.[2]) return undefined;
  return { host: scp[2], ...(scp[1] ? { user: scp[1] } : {}) };
}

const configPath = (path: string) => `"${path.replaceAll('"', '\\"')}"`;

export function sshConfigText(paths: KeyPaths, cloneUrl: string, comment: string): string {
  const target = sshTarget(cloneUrl);
  if (!target) return `# ${comment}\n# no Host entry: the clone URL ${cloneUrl} names no SSH host\n`;
  return [
    `# ${comment}`,
    `Host ${target.host}`,
    `  HostName ${target.host}`,
    ...(target.port ? [`  Port ${target.port}`] : []),
    ...(target.user ? [`  User ${target.user}`] : []),
    `  IdentityFile ${configPath(paths.privateKey)}`,
    '  IdentitiesOnly yes',
    `  UserKnownHostsFile ${configPath(paths.knownHosts)}`,
    '  StrictHostKeyChecking yes',
    '',
  ].join('\n');
}

// Written beside the target and renamed over it, so a reader never sees half a key and the mode is
// right from the first byte (chmod too: the mode given to writeFile is subject to the umask).
async function writeAtomically(path: string, text: string, mode: number): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, text, { mode });
  await chmod(temporary, mode);
  await rename(temporary, path);
}

export async function writeKeyFiles(
  paths: KeyPaths,
  files: { privateKey?: string; knownHosts: string[]; sshConfig: string },
): Promise<void> {
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  await chmod(paths.dir, 0o700);
  if (files.privateKey !== undefined) {
    const key = files.privateKey.endsWith('\n') ? files.privateKey : `${files.privateKey}\n`;
    await writeAtomically(paths.privateKey, key, 0o600);
  }
  await writeAtomically(paths.knownHosts, files.knownHosts.map((line) => `${line}\n`).join(''), 0o644);
  await writeAtomically(paths.sshConfig, files.sshConfig, 0o644);
}
