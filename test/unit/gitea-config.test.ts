// The README's Gitea/Forgejo example is a configuration the service accepts, and a Gitea host
// without known_hosts is refused before the service starts.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';

const BASE_ENV = {
  DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/deploykey',
  VAULT_ADDR: 'http://127.0.0.1:8200',
  VAULT_TOKEN: 'root-token',
};

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const section = readme.slice(readme.indexOf('### Self-hosted Gitea and Forgejo'));
const example = /```yaml\n([\s\S]*?)```/.exec(section)?.[1] ?? '';

function writeConfig(yaml: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'dkr-gitea-config-')), 'config.yaml');
  writeFileSync(path, yaml);
  return path;
}

describe('a Gitea/Forgejo host in the configuration', () => {
  it('loads the README example as written', () => {
    expect(example).toContain('type: gitea');
    const config = loadConfig({
      ...BASE_ENV,
      DEPLOYKEY_CONFIG: writeConfig(example),
      FORGEJO_TOKEN: 'f'.repeat(40),
    });
    expect(config.hosts).toEqual([
      expect.objectContaining({
        id: 'forgejo',
        type: 'gitea',
        apiUrl: 'https://code.example.org/api/v1',
        token: 'f'.repeat(40),
        knownHosts: [expect.stringMatching(/^\[code\.example\.org\]:2222 ssh-ed25519 /)],
      }),
    ]);
  });

  it('is refused without knownHosts, saying why', () => {
    const yaml = example.replace(/\n\s+knownHosts:[^\n]*\n\s+- "[^"]*"/, '');
    expect(yaml).not.toContain('knownHosts');
    let problems: string[] = [];
    try {
      loadConfig({ ...BASE_ENV, DEPLOYKEY_CONFIG: writeConfig(yaml), FORGEJO_TOKEN: 'f'.repeat(40) });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems = error.problems;
    }
    expect(problems.join('\n')).toMatch(/hosts\.0\.knownHosts is required for Gitea\/Forgejo hosts/);
  });
});
