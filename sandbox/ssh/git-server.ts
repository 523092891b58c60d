// The SSH endpoint of a Git host stand-in (github.com / gitlab.com `git@` over SSH). Deploy keys and
// repositories come from the shared HostState, so what the REST stand-in registers is exactly what
// a real `git clone` over SSH can use.
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import type { Connection, ServerChannel, Session } from 'ssh2';
import ssh2 from 'ssh2';
import sshpk from 'sshpk';
import type { AccessDecision, HostState } from '../shared/host-state.ts';

export interface SshGitServerOptions {
  state: HostState;
  /** OpenSSH or PEM private key; default: a fresh Ed25519 key made at start. */
  hostKeyPem?: string;
  /** What the host tells a refused or shell client; default GitHub's, or GitLab's for a `gitlab` state. */
  messages?: HostMessages;
  port?: number;
}

export interface SshGitServer {
  host: '127.0.0.1';
  port: number;
  /** `<type> <base64>`, e.g. `ssh-ed25519 AAAA…`. */
  hostPublicKey: string;
  /** known_hosts lines in the form OpenSSH writes (`[127.0.0.1]:PORT …` for a non-22 port). */
  knownHostsLines: string[];
  /** `ssh://git@127.0.0.1:PORT/<path>.git` */
  cloneUrl(path: string): string;
  close(): Promise<void>;
}

export type Refusal = Exclude<AccessDecision, 'allowed'> | 'bad-command';

/** The authenticated key and what it asked for, for hosts whose messages name them. */
export interface SshRequest {
  keyBlob: string;
  repositoryPath?: string;
  write: boolean;
}

export interface HostMessages {
  refusal(reason: Refusal, command: string, request: SshRequest): string;
  shell(repositoryPath: string | undefined, keyBlob: string): { text: string; code: number };
}

// GitHub answers a read-only deploy key push and an unknown repository with these exact lines
// (git itself then adds "fatal: Could not read from remote repository.").
const githubMessages: HostMessages = {
  refusal(reason, command) {
    if (reason === 'read-only')
      return 'ERROR: The key you are authenticating with has been marked as read only.\n';
    if (reason === 'bad-command') {
      return (
        `Invalid command: '${command}'\n  You appear to be using ssh to clone a git:// URL.\n` +
        '  Make sure your core.gitProxy config option and the\n' +
        '  GIT_PROXY_COMMAND environment variable are NOT set.\n'
      );
    }
    return 'ERROR: Repository not found.\n';
  },
  shell: (repositoryPath) => ({
    text: `Hi ${repositoryPath ?? 'there'}! You've successfully authenticated, but GitHub does not provide shell access.\n`,
    code: 1,
  }),
};

// gitlab-shell frames its errors in a `remote:` banner; texts from GitLab's Gitlab::GitAccess.
const gitlabBanner = (message: string) => {
  const rule = `remote: ${'='.repeat(72)}\n`;
  return `remote: \n${rule}remote: \nremote: ERROR: ${message}\n\nremote: \n${rule}remote: \n`;
};
const gitlabMessages: HostMessages = {
  refusal(reason) {
    if (reason === 'read-only')
      return gitlabBanner('This deploy key does not have write access to this project.');
    if (reason === 'bad-command') return gitlabBanner('Disallowed command');
    return gitlabBanner(
      "The project you were looking for could not be found or you don't have permission to view it.",
    );
  },
  // Deploy keys belong to no user, so GitLab greets them anonymously.
  shell: () => ({ text: 'Welcome to GitLab, Anonymous!\n', code: 0 }),
};

interface GitCommand {
  service: 'upload-pack' | 'receive-pack';
  repositoryPath: string;
}

/** Reads one argument quoted the way git's sq_quote_buf() writes it: `'…'` segments joined by `\x` escapes. */
function unquoteGitArgument(quoted: string): string | undefined {
  let out = '';
  let i = 0;
  while (i < quoted.length) {
    if (quoted[i] === "'") {
      const close = quoted.indexOf("'", i + 1);
      if (close < 0) return undefined;
      out += quoted.slice(i + 1, close);
      i = close + 1;
    } else if (quoted[i] === '\\' && i + 1 < quoted.length) {
      out += quoted[i + 1];
      i += 2;
    } else {
      return undefined;
    }
  }
  return out;
}

function parseGitCommand(command: string): GitCommand | undefined {
  const match = /^git[- ](upload-pack|receive-pack) (.+)$/.exec(command.trim());
  if (!match) return undefined;
  const argument = unquoteGitArgument(match[2]!);
  if (!argument) return undefined;
  const repositoryPath = argument.replace(/^\/+/, '').replace(/\.git$/, '');
  if (!repositoryPath || repositoryPath.includes('\0')) return undefined;
  return { service: match[1] as GitCommand['service'], repositoryPath };
}

function keyBlobOf(data: Buffer): { blob: string; key: ssh2.ParsedKey } | undefined {
  const parsed = ssh2.utils.parseKey(data);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) return undefined;
  return { blob: `${key.type} ${key.getPublicSSH().toString('base64')}`, key };
}

function loadHostKey(pem: string | undefined): string {
  if (pem === undefined) {
    const { privateKey } = generateKeyPairSync('ed25519');
    pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  }
  // ssh2 reads OpenSSH-format keys but not PKCS#8 Ed25519, so anything it rejects goes through sshpk.
  const direct = ssh2.utils.parseKey(pem);
  if (!(direct instanceof Error)) return pem;
  return sshpk.parsePrivateKey(pem, 'auto').toString('openssh');
}

// The exit status goes out only once stderr is flushed: stderr shares the channel window with stdout.
function finishChannel(stream: ServerChannel, text: string, code: number): void {
  if (!stream.stderr.writable) return;
  if (text) stream.stderr.write(text);
  stream.stderr.end(() => {
    stream.exit(code);
    stream.end();
  });
}

function runGitService(
  stream: ServerChannel,
  service: GitCommand['service'],
  bareDir: string,
  gitProtocol: string | undefined,
): void {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME ?? tmpdir() };
  if (gitProtocol) env.GIT_PROTOCOL = gitProtocol;
  const child = spawn('git', [service, bareDir], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let done = false;
  const finish = (text: string, code: number) => {
    if (done) return;
    done = true;
    finishChannel(stream, text, code);
  };
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  stream.on('close', stop);
  stream.on('error', stop);
  child.stdin.on('error', () => {});
  child.on('error', (error) => finish(`fatal: could not run git ${service}: ${error.message}\n`, 1));
  child.on('close', (code, signal) => finish('', code ?? (signal ? 128 : 1)));
  stream.pipe(child.stdin);
  child.stdout.pipe(stream, { end: false });
  child.stderr.on('data', (chunk: Buffer) => {
    if (!done && stream.stderr.writable) stream.stderr.write(chunk);
  });
}

export async function startSshGitServer(opts: SshGitServerOptions): Promise<SshGitServer> {
  const { state } = opts;
  const messages = opts.messages ?? (/gitlab/i.test(state.name) ? gitlabMessages : githubMessages);
  const hostKey = loadHostKey(opts.hostKeyPem);
  const hostParsed = ssh2.utils.parseKey(hostKey);
  if (hostParsed instanceof Error) throw hostParsed;
  const hostPublic = Array.isArray(hostParsed) ? hostParsed[0]! : hostParsed;
  const hostPublicKey = `${hostPublic.type} ${hostPublic.getPublicSSH().toString('base64')}`;
  const connections = new Set<Connection>();

  const handleSession = (session: Session, keyBlob: string) => {
    const accepted = (accept: () => ServerChannel) => {
      const stream = accept();
      // A client that disconnects mid-transfer must not take the server down with a write error.
      stream.on('error', () => {});
      stream.stderr.on('error', () => {});
      return stream;
    };
    let gitProtocol: string | undefined;
    session.on('env', (accept, reject, info) => {
      // Git asks ssh to forward GIT_PROTOCOL (SendEnv) to negotiate protocol v2; nothing else is taken.
      if (info.key === 'GIT_PROTOCOL' && /^[\w.=:-]+$/.test(info.val)) {
        gitProtocol = info.val;
        accept?.();
      } else {
        reject?.();
      }
    });
    session.on('pty', (_accept, reject) => reject?.());
    session.on('shell', (accept) => {
      const stream = accepted(accept);
      const repository = state.keysWithBlob(keyBlob).map((key) => state.findRepository(key.repositoryId))[0];
      const { text, code } = messages.shell(repository?.path, keyBlob);
      finishChannel(stream, text, code);
    });
    session.on('exec', (accept, _reject, info) => {
      const stream = accepted(accept);
      const command = parseGitCommand(info.command);
      if (!command) {
        finishChannel(stream, messages.refusal('bad-command', info.command, { keyBlob, write: false }), 1);
        return;
      }
      const write = command.service === 'receive-pack';
      // Checked again per command: a key deleted after login must not serve a new clone or push.
      const decision = state.authorize(keyBlob, command.repositoryPath, write);
      const repository = state.findRepository(command.repositoryPath);
      if (decision !== 'allowed' || !repository) {
        finishChannel(
          stream,
          messages.refusal(decision === 'allowed' ? 'no-access' : decision, info.command, {
            keyBlob,
            repositoryPath: command.repositoryPath,
            write,
          }),
          1,
        );
        return;
      }
      runGitService(stream, command.service, repository.bareDir, gitProtocol);
    });
  };

  const server = new ssh2.Server({ hostKeys: [hostKey] }, (client) => {
    connections.add(client);
    let keyBlob: string | undefined;
    client.on('error', () => {});
    client.on('close', () => connections.delete(client));
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey' || ctx.username !== 'git') {
        ctx.reject(['publickey']);
        return;
      }
      const offered = keyBlobOf(ctx.key.data);
      if (!offered || offered.key.type !== ctx.key.algo || !state.isUsableKey(offered.blob)) {
        ctx.reject(['publickey']);
        return;
      }
      if (!ctx.signature) {
        ctx.accept();
        return;
      }
      if (ctx.blob && offered.key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true) {
        keyBlob = offered.blob;
        ctx.accept();
      } else {
        ctx.reject(['publickey']);
      }
    });
    client.on('ready', () => {
      client.on('session', (accept) => {
        if (keyBlob) handleSession(accept(), keyBlob);
      });
    });
  });

  await new Promise<void>((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolvePromise();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const knownHost = port === 22 ? '127.0.0.1' : `[127.0.0.1]:${port}`;

  return {
    host: '127.0.0.1',
    port,
    hostPublicKey,
    knownHostsLines: [`${knownHost} ${hostPublicKey}`],
    cloneUrl: (path) => `ssh://git@127.0.0.1:${port}/${path.replace(/^\/+/, '')}.git`,
    close: () =>
      new Promise<void>((resolvePromise) => {
        server.close(() => resolvePromise());
        for (const client of connections) client.end();
      }),
  };
}
