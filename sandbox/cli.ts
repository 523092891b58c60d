// `deploykey sandbox`: the stand-ins plus the real service, for a first run and for demos.
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { parseCommandArgs } from '../src/cli/client/command-support.ts';
import { UsageError } from '../src/cli/usage-error.ts';
import { environmentOverrides } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { startSandboxService } from './service.ts';
import { type StandIns, startStandIns } from './stand-ins.ts';

const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/deploykey_sandbox';
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

export const SANDBOX_USAGE = `usage: deploykey sandbox [--json] [--logs] [--tls] [--api-port N]

Runs the service (API and worker) on local stand-ins for GitHub, GitLab, Gitea, Vault and an OIDC
issuer, with the real PostgreSQL and Redis (DATABASE_URL, default the database deploykey_sandbox,
created if missing; REDIS_URL; REDIS_PREFIX, default dkr-sandbox). Prints every address and the
demo's tokens: it is a local demo, so it shows what "deploykey serve" never prints. Ctrl-C stops it.

options:
  --json         stdout is exactly one JSON line (addresses and tokens) once all is ready; the
                 summary and logs go to stderr
  --logs         the service's logs on stderr (default: into a file named in the summary)
  --tls          also serve GitHub, GitLab and Vault over HTTPS, with a CA made for the run (in
                 the JSON line's tls field)
  --api-port N   where the API listens (default 8080; 0 picks a free port)

examples:
  deploykey sandbox
  deploykey sandbox --json --api-port 0 | jq -r .token
  npm run --silent sandbox -- --json | jq .`;

async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
  } finally {
    await client.end();
  }
}

interface SummaryFacts {
  api: string;
  token: string;
  auditorToken: string;
  /** Where the logs go, or undefined when they are printed. */
  logFile: string | undefined;
}

function summary(standIns: StandIns, { api, token, auditorToken, logFile }: SummaryFacts): string {
  const { github, gitlab, gitea, vault, oidc } = standIns;
  const issue = `curl -s -X POST ${api}/v1/keys -H "Authorization: Bearer ${token}" -H 'Content-Type: application/json' \\
    -d '{"provider":"github","repository":"acme/models","jobId":"demo-1","ttlSeconds":600,"delivery":"response"}' > key.json`;
  return `deploykey sandbox is running (Ctrl-C stops it)
These tokens are printed because this is a local demo on stand-ins; "deploykey serve" never prints any.

  service API     ${api}
                  caller token:  ${token}
                  auditor token: ${auditorToken}
  GitHub API      ${github.api.url}   token: ${github.token}   ssh: ${github.ssh.host}:${github.ssh.port}
  GitLab API      ${gitlab.api.url}   token: ${gitlab.token}   ssh: ${gitlab.ssh.host}:${gitlab.ssh.port}
  Gitea API       ${gitea.api.apiUrl}   token: ${gitea.token}   ssh: ${gitea.ssh.host}:${gitea.ssh.port}
  Vault           ${vault.addr}   token: ${vault.token}
  OIDC issuer     ${oidc.issuer}   mint tokens: POST ${oidc.mintUrl} {"kind":"github-actions","claims":{"repository":"acme/models"}}
  repositories    ${standIns.repositories.join(', ')} (on every host)
  audit console   ${api}/ui (sign in with the auditor token)   API reference: ${api}/docs
  logs            ${logFile ?? 'on stderr (--logs)'}

See the deploy keys on the host side:
  curl -s ${github.api.url}/repos/acme/models/keys -H "Authorization: Bearer ${github.token}"

Issue a key and clone with it:

  ${issue}
  jq -r .privateKey key.json > id_demo && chmod 600 id_demo && jq -r '.knownHosts[]' key.json > known_hosts_demo
  GIT_SSH_COMMAND="ssh -i ./id_demo -o IdentitiesOnly=yes -o UserKnownHostsFile=./known_hosts_demo -o StrictHostKeyChecking=yes" \\
    git clone "$(jq -r .cloneUrl key.json)"
  curl -s -X POST ${api}/v1/jobs/demo-1/complete -H "Authorization: Bearer ${token}"   # revoke it
`;
}

// `--tls`: the HTTPS twins of the stand-ins and the CA that signed them, for https-only clients.
function tlsLine(standIns: StandIns) {
  return {
    caFile: standIns.tls?.caFile,
    caCert: standIns.tls?.caCertPem,
    github: standIns.github.api.httpsUrl,
    gitlab: standIns.gitlab.api.httpsUrl,
    vault: standIns.vault.httpsAddr,
  };
}

function tlsSummary(standIns: StandIns): string {
  const line = tlsLine(standIns);
  return `  HTTPS (--tls)   GitHub ${line.github}   GitLab ${line.gitlab}   Vault ${line.vault}
                  CA certificate: ${line.caFile} (SSL_CERT_FILE, VAULT_CACERT, REQUESTS_CA_BUNDLE)
`;
}

function parseSandboxArgs(args: string[]) {
  const { values } = parseCommandArgs(
    {
      args,
      options: {
        json: { type: 'boolean' },
        logs: { type: 'boolean' },
        'api-port': { type: 'string' },
        tls: { type: 'boolean' },
      },
    },
    SANDBOX_USAGE,
  );
  const apiPort = Number(values['api-port'] ?? '8080');
  if (!/^\d+$/.test(values['api-port'] ?? '8080') || apiPort > 65535) {
    throw new UsageError('--api-port must be a port number (0 picks a free one)', SANDBOX_USAGE);
  }
  return { json: values.json === true, logs: values.logs === true, tls: values.tls === true, apiPort };
}

export async function runSandboxCommand(args: string[]): Promise<void> {
  const options = parseSandboxArgs(args);
  const overrides = environmentOverrides(['DATABASE_URL', 'REDIS_URL', 'REDIS_PREFIX', 'LOG_LEVEL']);
  const databaseUrl = overrides.DATABASE_URL ?? DEFAULT_DATABASE_URL;
  await ensureDatabase(databaseUrl);

  const standIns = await startStandIns({ tls: options.tls });
  // Token names are unique in the database, which outlives a sandbox run.
  const runId = randomBytes(3).toString('hex');
  const callerName = `sandbox-ci-${runId}`;
  const auditorName = `sandbox-auditor-${runId}`;
  // pino's JSON lines would bury the summary, so they go to a file unless asked for; never to
  // stdout, which holds only the --json line.
  const logFile = options.logs ? undefined : join(tmpdir(), `deploykey-sandbox-${runId}.log`);
  const logger = createLogger(
    overrides.LOG_LEVEL ?? 'info',
    logFile ? createWriteStream(logFile, { mode: 0o600 }) : process.stderr,
  );
  let service: Awaited<ReturnType<typeof startSandboxService>>;
  try {
    service = await startSandboxService({
      standIns,
      databaseUrl,
      redisUrl: overrides.REDIS_URL ?? DEFAULT_REDIS_URL,
      redisPrefix: overrides.REDIS_PREFIX ?? 'dkr-sandbox',
      apiPort: options.apiPort,
      callers: [
        { name: callerName, role: 'issuer' },
        { name: auditorName, role: 'auditor' },
      ],
      logger,
      fileConfig: { reconciler: { periodSeconds: 10, orphanScanSeconds: 60 } },
    });
  } catch (error) {
    await standIns.close();
    throw error;
  }

  const token = service.tokens[callerName]!;
  const auditorToken = service.tokens[auditorName]!;
  if (options.json)
    process.stdout.write(`${JSON.stringify(jsonLine(standIns, service.url, token, auditorToken))}\n`);
  process.stderr.write(`${summary(standIns, { api: service.url, token, auditorToken, logFile })}\n`);
  if (standIns.tls) process.stderr.write(tlsSummary(standIns));

  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  const deadline = setTimeout(() => process.exit(1), 10_000);
  deadline.unref();
  await service.stop();
  await standIns.close();
  process.exit(0);
}

function jsonLine(standIns: StandIns, api: string, token: string, auditorToken: string) {
  const host = (h: Pick<StandIns['github'], 'token' | 'ssh'>) => ({
    token: h.token,
    ssh: { host: h.ssh.host, port: h.ssh.port },
    knownHosts: h.ssh.knownHostsLines.join('\n'),
  });
  return {
    github: { api: standIns.github.api.url, ...host(standIns.github), app: standIns.github.app },
    gitlab: { api: standIns.gitlab.api.url, ...host(standIns.gitlab) },
    gitea: { api: standIns.gitea.api.apiUrl, ...host(standIns.gitea) },
    vault: { addr: standIns.vault.addr, token: standIns.vault.token, mount: standIns.vault.mount },
    repos: standIns.repositories,
    api,
    token,
    auditorToken,
    oidc: { issuer: standIns.oidc.issuer, mint: standIns.oidc.mintUrl },
    kubernetes: {
      api: standIns.kubernetes.api,
      token: standIns.kubernetes.token,
      kubeconfig: standIns.kubernetes.kubeconfigPath,
    },
    ...(standIns.tls ? { tls: tlsLine(standIns) } : {}),
  };
}
