// `deploykey sandbox`: the stand-ins plus the real service, for a first run and for demos.
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { environmentOverrides } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { startSandboxService } from './service.ts';
import { type StandIns, startStandIns } from './stand-ins.ts';

const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/deploykey_sandbox';
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

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

function summary(standIns: StandIns, api: string, token: string, auditorToken: string): string {
  const issue = `curl -s -X POST ${api}/v1/keys -H "Authorization: Bearer ${token}" -H 'Content-Type: application/json' \\
    -d '{"provider":"github","repository":"acme/models","jobId":"demo-1","ttlSeconds":600,"delivery":"response"}' > key.json`;
  return `deploykey sandbox is running (Ctrl-C stops it)

  service API     ${api}   caller token: ${token}
                  auditor token: ${auditorToken}
  GitHub API      ${standIns.github.api.url}   ssh: ${standIns.github.ssh.host}:${standIns.github.ssh.port}
  GitLab API      ${standIns.gitlab.api.url}   ssh: ${standIns.gitlab.ssh.host}:${standIns.gitlab.ssh.port}
  Vault           ${standIns.vault.addr}   token: ${standIns.vault.token}
  OIDC issuer     ${standIns.oidc.issuer}   mint tokens: POST ${standIns.oidc.mintUrl} {"kind":"github-actions","claims":{"repository":"acme/models"}}
  repositories    ${standIns.repositories.join(', ')} (on both hosts)
  audit console   ${api}/ui (sign in with the auditor token)   API reference: ${api}/docs

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

export async function runSandboxCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { json: { type: 'boolean' }, 'api-port': { type: 'string' }, tls: { type: 'boolean' } },
    strict: true,
  });
  const apiPort = Number(values['api-port'] ?? '8080');
  if (!Number.isInteger(apiPort) || apiPort < 0 || apiPort > 65535) {
    throw new Error('--api-port must be a port number (0 picks a free one)');
  }
  const overrides = environmentOverrides(['DATABASE_URL', 'REDIS_URL', 'LOG_LEVEL']);
  const databaseUrl = overrides.DATABASE_URL ?? DEFAULT_DATABASE_URL;
  await ensureDatabase(databaseUrl);

  const standIns = await startStandIns({ tls: values.tls === true });
  // Token names are unique in the database, which outlives a sandbox run.
  const runId = randomBytes(3).toString('hex');
  const callerName = `sandbox-ci-${runId}`;
  const auditorName = `sandbox-auditor-${runId}`;
  // Logs go to stderr so that stdout holds only the --json line.
  const logger = createLogger(overrides.LOG_LEVEL ?? (values.json ? 'warn' : 'info'), process.stderr);
  let service: Awaited<ReturnType<typeof startSandboxService>>;
  try {
    service = await startSandboxService({
      standIns,
      databaseUrl,
      redisUrl: overrides.REDIS_URL ?? DEFAULT_REDIS_URL,
      redisPrefix: 'dkr-sandbox',
      apiPort,
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
  const host = (h: Pick<StandIns['github'], 'token' | 'ssh'>) => ({
    token: h.token,
    ssh: { host: h.ssh.host, port: h.ssh.port },
    knownHosts: h.ssh.knownHostsLines.join('\n'),
  });
  if (values.json) {
    const line = {
      github: { api: standIns.github.api.url, ...host(standIns.github) },
      gitlab: { api: standIns.gitlab.api.url, ...host(standIns.gitlab) },
      gitea: { api: standIns.gitea.api.apiUrl, ...host(standIns.gitea) },
      vault: { addr: standIns.vault.addr, token: standIns.vault.token, mount: standIns.vault.mount },
      repos: standIns.repositories,
      api: service.url,
      token,
      auditorToken: service.tokens[auditorName],
      oidc: { issuer: standIns.oidc.issuer, mint: standIns.oidc.mintUrl },
      kubernetes: {
        api: standIns.kubernetes.api,
        token: standIns.kubernetes.token,
        kubeconfig: standIns.kubernetes.kubeconfigPath,
      },
      ...(standIns.tls ? { tls: tlsLine(standIns) } : {}),
    };
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
  process.stderr.write(`${summary(standIns, service.url, token, service.tokens[auditorName]!)}\n`);
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
