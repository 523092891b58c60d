import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';

const BASE_ENV = {
  DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/deploykey',
  VAULT_ADDR: 'http://127.0.0.1:8200',
  VAULT_TOKEN: 'root-token',
};

function writeConfig(yaml: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'dkr-config-')), 'config.yaml');
  writeFileSync(path, yaml);
  return path;
}

function problemsOf(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected the configuration to be rejected');
}

describe('loadConfig', () => {
  it('applies safe defaults when only the required settings are given', () => {
    const config = loadConfig(BASE_ENV);
    expect(config.http).toEqual({
      host: '127.0.0.1',
      port: 8080,
      requestTimeoutSeconds: 30,
      headersTimeoutSeconds: 10,
      keepAliveTimeoutSeconds: 72,
      connectionTimeoutSeconds: 120,
      maxRequestsPerSocket: 1_000,
      maxConnections: 1_024,
    });
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(config.keys).toEqual({ minTtlSeconds: 60, maxTtlSeconds: 86_400, defaultTtlSeconds: 3_600 });
    expect(config.vault).toMatchObject({ kvMount: 'secret', pathPrefix: 'deploy-keys' });
    expect(config.reconciler.periodSeconds).toBe(30);
  });

  it('names every offending setting at once', () => {
    const problems = problemsOf({ DATABASE_URL: 'mysql://x', PORT: 'eighty', LOG_LEVEL: 'loud' });
    const text = problems.join('\n');
    for (const name of ['DATABASE_URL', 'PORT', 'LOG_LEVEL', 'VAULT_ADDR', 'VAULT_TOKEN']) {
      expect(text).toContain(name);
    }
    expect(problems.find((p) => p.startsWith('VAULT_TOKEN'))).toBe('VAULT_TOKEN is required');
  });

  it('reads Git hosts from the config file and their tokens from the environment', () => {
    const path = writeConfig(`
hosts:
  - id: github
    type: github
    apiUrl: https://api.github.com
    sshUrl: ssh://git@github.com
  - id: ghes
    type: github
    apiUrl: https://ghe.example.com/api/v3
    sshUrl: ssh://git@ghe.example.com
    tokenEnv: GHES_TOKEN
keys:
  maxTtlSeconds: 7200
`);
    const config = loadConfig({
      ...BASE_ENV,
      DEPLOYKEY_CONFIG: path,
      DEPLOYKEY_HOST_GITHUB_TOKEN: 'ghp_one',
      GHES_TOKEN: 'ghp_two',
    });
    expect(config.hosts.map((h) => [h.id, h.token])).toEqual([
      ['github', 'ghp_one'],
      ['ghes', 'ghp_two'],
    ]);
    expect(config.keys.maxTtlSeconds).toBe(7200);
  });

  it('rejects unknown settings, duplicate host ids and missing host credentials in the file', () => {
    const path = writeConfig(`
hosts:
  - { id: github, type: github, apiUrl: 'https://api.github.com', sshUrl: 'ssh://git@github.com' }
  - { id: github, type: gitlab, apiUrl: 'https://gitlab.com/api/v4', sshUrl: 'ssh://git@gitlab.com' }
keys:
  maxTtl: 5
`);
    const text = problemsOf({ ...BASE_ENV, DEPLOYKEY_CONFIG: path }).join('\n');
    expect(text).toContain('config keys.maxTtl is not a known setting');
    expect(text).not.toContain('is used twice');
    const fixed = writeConfig(`
hosts:
  - { id: github, type: github, apiUrl: 'https://api.github.com', sshUrl: 'ssh://git@github.com' }
  - { id: github, type: gitlab, apiUrl: 'https://gitlab.com/api/v4', sshUrl: 'ssh://git@gitlab.com' }
`);
    const second = problemsOf({ ...BASE_ENV, DEPLOYKEY_CONFIG: fixed }).join('\n');
    expect(second).toContain('config hosts.1.id "github" is used twice');
    expect(second).toContain('DEPLOYKEY_HOST_GITHUB_TOKEN is required');
  });

  it('reads GitHub App and token-file credentials, naming what is missing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dkr-secrets-'));
    writeFileSync(join(dir, 'gitlab-token'), 'glpat-from-file\n');
    const path = writeConfig(`
hosts:
  - id: github
    type: github
    apiUrl: 'https://api.github.com'
    sshUrl: 'ssh://git@github.com'
    auth: { type: app, appId: 123, privateKeyFile: '${join(dir, 'app.pem')}' }
  - id: gitlab
    type: gitlab
    apiUrl: 'https://gitlab.com/api/v4'
    sshUrl: 'ssh://git@gitlab.com'
    knownHosts: ['gitlab.com ssh-ed25519 AAAA']
    auth: { type: token, tokenFile: '${join(dir, 'gitlab-token')}' }
`);
    expect(problemsOf({ ...BASE_ENV, DEPLOYKEY_CONFIG: path })).toEqual([
      `${join(dir, 'app.pem')} cannot be read: ENOENT`,
    ]);
    writeFileSync(
      join(dir, 'app.pem'),
      '-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n',
    );
    const config = loadConfig({ ...BASE_ENV, DEPLOYKEY_CONFIG: path });
    expect(config.hosts[0]?.credential).toEqual({
      type: 'app',
      appId: 123,
      privateKey: { file: join(dir, 'app.pem') },
    });
    expect(config.hosts[0]?.token).toBe('');
    expect(config.hosts[1]?.token).toBe('glpat-from-file');
    const gitlabApp = writeConfig(`
hosts:
  - id: gitlab
    type: gitlab
    apiUrl: 'https://gitlab.com/api/v4'
    sshUrl: 'ssh://git@gitlab.com'
    knownHosts: ['gitlab.com ssh-ed25519 AAAA']
    auth: { type: app, appId: 1 }
`);
    const problems = problemsOf({ ...BASE_ENV, DEPLOYKEY_CONFIG: gitlabApp }).join('\n');
    expect(problems).toContain('config hosts.0.auth.type "app" is for GitHub hosts only');
    expect(problems).toContain('DEPLOYKEY_HOST_GITLAB_APP_KEY is required');
  });

  it('reads a pool of credentials for one host, refusing it beside a single auth or with a name twice', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dkr-pool-'));
    writeFileSync(join(dir, 'a.pem'), '-----BEGIN RSA PRIVATE KEY-----\na\n-----END RSA PRIVATE KEY-----\n');
    const pool = (extra: string, secondName: string) =>
      writeConfig(`
hosts:
  - id: github
    type: github
    apiUrl: 'https://api.github.com'
    sshUrl: 'ssh://git@github.com'${extra}
    credentials:
      - { name: app-a, auth: { type: app, appId: 1, privateKeyFile: '${join(dir, 'a.pem')}' } }
      - { name: ${secondName}, auth: { type: token, tokenEnv: POOL_TOKEN } }
`);
    const env = { ...BASE_ENV, POOL_TOKEN: 'ghp-pooled' };
    const config = loadConfig({ ...env, DEPLOYKEY_CONFIG: pool('', 'pat-b') });
    expect(config.hosts[0]?.pool).toEqual([
      {
        name: 'app-a',
        token: '',
        credential: { type: 'app', appId: 1, privateKey: { file: join(dir, 'a.pem') } },
      },
      { name: 'pat-b', token: 'ghp-pooled', credential: { type: 'token', token: { value: 'ghp-pooled' } } },
    ]);
    const both = problemsOf({ ...env, DEPLOYKEY_CONFIG: pool('\n    auth: { type: token }', 'app-a') });
    expect(both.join('\n')).toContain('config hosts.0 has both auth and credentials; keep one');
    expect(both.join('\n')).toContain('config hosts.0.credentials name "app-a" is used twice');
    const unnamed = problemsOf({ ...env, DEPLOYKEY_CONFIG: pool('', 'Not A Name') }).join('\n');
    expect(unnamed).toMatch(/credentials/);
  });

  it('explains an unreadable config file without a stack trace', () => {
    const problems = problemsOf({ ...BASE_ENV, DEPLOYKEY_CONFIG: '/nonexistent/deploykey.yaml' });
    expect(problems).toEqual(['DEPLOYKEY_CONFIG (/nonexistent/deploykey.yaml) cannot be read: ENOENT']);
  });

  it('rejects TTL bounds that contradict each other', () => {
    const path = writeConfig('keys: { minTtlSeconds: 600, maxTtlSeconds: 60, defaultTtlSeconds: 300 }\n');
    const text = problemsOf({ ...BASE_ENV, DEPLOYKEY_CONFIG: path }).join('\n');
    expect(text).toContain('minTtlSeconds must not exceed keys.maxTtlSeconds');
  });

  it('takes a Vault login method instead of VAULT_TOKEN, and asks for the token without one', () => {
    const { VAULT_TOKEN: _token, ...withoutToken } = BASE_ENV;
    expect(problemsOf(withoutToken).join('\n')).toContain('VAULT_TOKEN is required');
    const kubernetes = loadConfig({
      ...withoutToken,
      DEPLOYKEY_CONFIG: writeConfig('vault: { auth: { method: kubernetes, role: deploykey-rotator } }\n'),
    });
    expect(kubernetes.vault.auth).toEqual({
      method: 'kubernetes',
      role: 'deploykey-rotator',
    });
    expect(loadConfig(BASE_ENV).vault.auth).toEqual({ method: 'token' });
    const approle = writeConfig('vault: { auth: { method: approle, roleId: r1 } }\n');
    expect(problemsOf({ ...withoutToken, DEPLOYKEY_CONFIG: approle }).join('\n')).toContain('vault.auth');
  });
});
