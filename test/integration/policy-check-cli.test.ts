// `deploykey policy check` explains a decision from the config file alone, issuing nothing.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { SANDBOX_POLICY } from '../../sandbox/stand-ins.ts';
import { runCli } from '../support/cli.ts';

let env: Record<string, string>;

beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), 'dkr-policy-check-'));
  const configPath = join(dir, 'config.yaml');
  writeFileSync(
    configPath,
    stringify({
      auth: { oidcIssuers: [{ id: 'sandbox-oidc', issuer: 'https://issuer.example' }] },
      policy: SANDBOX_POLICY,
    }),
  );
  // No database, Vault or host settings: the check needs none of them.
  env = { DEPLOYKEY_CONFIG: configPath };
});

describe('deploykey policy check', () => {
  it('allows a workflow its own repository and names the deciding rule', async () => {
    const result = await runCli(
      [
        'policy',
        'check',
        '--issuer',
        'sandbox-oidc',
        '--claims',
        JSON.stringify({ repository: 'acme/models', workflow: 'train' }),
        '--provider',
        'github',
        '--repo',
        'acme/models',
      ],
      env,
    );
    expect(result.code).toBe(0);
    expect(result.stdout.split('\n')[0]).toBe('allowed by rule "github-actions-own-repository"');
    expect(result.stdout).toContain('kubernetes-training-jobs: does not apply');
  });

  it('denies another repository, says why, and exits 3; --json carries the same decision', async () => {
    const args = [
      'policy',
      'check',
      '--issuer',
      'sandbox-oidc',
      '--claims',
      JSON.stringify({ repository: 'acme/models', workflow: 'train' }),
      '--provider',
      'github',
      '--repo',
      'acme/datasets',
    ];
    const text = await runCli(args, env);
    expect(text.code).toBe(3);
    expect(text.stdout.split('\n')[0]).toMatch(/^denied: repository-not-allowed: acme\/datasets/);
    const json = await runCli([...args, '--json'], env);
    expect(json.code).toBe(3);
    const body = JSON.parse(json.stdout);
    expect(body.decision).toMatchObject({ allowed: false, reason: 'repository-not-allowed' });
    expect(body.rules.length).toBe(SANDBOX_POLICY.length);
  });

  it('refuses to guess: missing arguments and bad claims are usage errors', async () => {
    const missing = await runCli(['policy', 'check', '--issuer', 'x'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr.split('\n')[0]).toBe(
      'deploykey: policy check needs --issuer, --provider and --repo',
    );
    const badClaims = await runCli(
      ['policy', 'check', '--issuer', 'x', '--claims', '[1]', '--provider', 'github', '--repo', 'a/b'],
      env,
    );
    expect(badClaims.code).toBe(2);
    expect(badClaims.stderr).toContain('the claims must be a JSON object');
  });
});
