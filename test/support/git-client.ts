// Drives the real OpenSSH client and git against the sandbox SSH git server, isolated from the
// config, keys and agent of whoever runs the tests.
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import sshpk from 'sshpk';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The words each host's git-over-SSH endpoint uses to refuse a push or an unknown repository. */
export const HOST_REFUSALS: Record<'github' | 'gitlab' | 'gitea', { push: RegExp; repository: RegExp }> = {
  github: { push: /marked as read only/, repository: /Repository not found/ },
  gitlab: { push: /does not have write access/, repository: /could not be found/ },
  gitea: { push: /is not authorized to write acme\/models/, repository: /is not authorized to read/ },
};

const shellQuote = (value: string) => `'${value.replaceAll("'", `'\\''`)}'`;

export async function writeClientKey(dir: string, privateKeyOpenssh: string): Promise<string> {
  const path = join(dir, `id_ed25519-${randomUUID().slice(0, 8)}`);
  const text = privateKeyOpenssh.endsWith('\n') ? privateKeyOpenssh : `${privateKeyOpenssh}\n`;
  await writeFile(path, text, { mode: 0o600 });
  // OpenSSH refuses a private key readable by others; the mode above is subject to umask.
  await chmod(path, 0o600);
  return path;
}

export async function writeKnownHosts(dir: string, lines: string[]): Promise<string> {
  const path = join(dir, `known_hosts-${randomUUID().slice(0, 8)}`);
  await writeFile(path, `${lines.join('\n')}\n`);
  return path;
}

function sshOptions(keyPath: string, knownHostsPath: string): string[] {
  return [
    '-i',
    keyPath,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    `UserKnownHostsFile=${knownHostsPath}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-F',
    '/dev/null',
  ];
}

/** A GIT_SSH_COMMAND value (git runs it through `sh`, hence the quoting). */
export function gitSshCommand(keyPath: string, knownHostsPath: string): string {
  return [
    'ssh',
    ...sshOptions(keyPath, knownHostsPath).map((arg) => (/^[\w./=-]+$/.test(arg) ? arg : shellQuote(arg))),
  ].join(' ');
}

function run(
  command: string,
  args: string[],
  opts: { cwd?: string | undefined; env: NodeJS.ProcessEnv; timeoutMs?: number | undefined },
): Promise<CommandResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} timed out after ${opts.timeoutMs}ms\n${stderr}`));
    }, opts.timeoutMs ?? 20_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

// No user or system config, no agent, no prompts: only what the test passes in.
function isolatedEnv(home: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    LANG: 'C',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    GIT_AUTHOR_NAME: 'deploykey-rotator test',
    GIT_AUTHOR_EMAIL: 'test@deploykey-rotator.invalid',
    GIT_COMMITTER_NAME: 'deploykey-rotator test',
    GIT_COMMITTER_EMAIL: 'test@deploykey-rotator.invalid',
  };
}

async function withTempHome<T>(use: (home: string) => Promise<T>): Promise<T> {
  const home = await mkdtemp(join(tmpdir(), 'git-client-home-'));
  try {
    return await use(home);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

export function runGit(
  args: string[],
  opts: { cwd?: string; sshCommand: string; timeoutMs?: number },
): Promise<CommandResult> {
  return withTempHome((home) =>
    run('git', args, {
      cwd: opts.cwd,
      timeoutMs: opts.timeoutMs,
      env: { ...isolatedEnv(home), GIT_SSH_COMMAND: opts.sshCommand },
    }),
  );
}

/** Runs `ssh <the same options as gitSshCommand> <args>`, e.g. to send a command git would never send. */
export function runSsh(
  args: string[],
  opts: { keyPath: string; knownHostsPath: string; timeoutMs?: number },
): Promise<CommandResult> {
  return withTempHome((home) =>
    run('ssh', [...sshOptions(opts.keyPath, opts.knownHostsPath), ...args], {
      timeoutMs: opts.timeoutMs,
      env: isolatedEnv(home),
    }),
  );
}

export function generateEd25519(): { privateKeyOpenssh: string; publicKey: string } {
  const { privateKey } = generateKeyPairSync('ed25519');
  const parsed = sshpk.parsePrivateKey(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 'pem');
  const [type, data] = parsed.toPublic().toString('ssh').split(' ');
  return { privateKeyOpenssh: parsed.toString('openssh'), publicKey: `${type} ${data}` };
}

// An agent that offers one public key and signs with whatever key it is given, so a client can
// claim a registered key without holding its private half.
class ClaimingAgent extends ssh2.BaseAgent<string> {
  readonly #publicKey: string;
  readonly #signer: ssh2.ParsedKey;
  constructor(publicKey: string, signerOpenssh: string) {
    super();
    this.#publicKey = publicKey;
    this.#signer = ssh2.utils.parseKey(signerOpenssh) as ssh2.ParsedKey;
  }
  getIdentities(cb: (err: Error | undefined, keys?: string[]) => void): void {
    cb(undefined, [this.#publicKey]);
  }
  sign(_key: string, data: Buffer, ...rest: unknown[]): void {
    const cb = rest.at(-1) as (err: Error | undefined, signature?: Buffer) => void;
    const signature = this.#signer.sign(data);
    if (signature instanceof Error) cb(signature);
    else cb(undefined, signature);
  }
}

/**
 * Authenticates as `git` with the ssh2 client, offering `publicKey` but signing with `signerOpenssh`
 * (pass a different key to play a client that claims a key it does not hold).
 */
export function authenticateClaimingKey(
  port: number,
  hostPublicKey: string,
  publicKey: string,
  signerOpenssh: string,
): Promise<'authenticated' | Error> {
  const agent = new ClaimingAgent(publicKey, signerOpenssh);
  return new Promise((resolvePromise) => {
    const client = new ssh2.Client();
    client.on('ready', () => {
      client.end();
      resolvePromise('authenticated');
    });
    client.on('error', resolvePromise);
    client.connect({
      host: '127.0.0.1',
      port,
      username: 'git',
      agent,
      hostVerifier: (key: Buffer) => key.toString('base64') === hostPublicKey.split(' ')[1],
    });
  });
}
