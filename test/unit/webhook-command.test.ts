import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { runCli } from '../support/cli.ts';

const config = join(mkdtempSync(join(tmpdir(), 'dk-webhook-')), 'config.yaml');
writeFileSync(
  config,
  `hosts:
  - id: github
    type: github
    apiUrl: https://api.github.com
    sshUrl: ssh://git@github.com
  - id: gitlab-eu
    type: gitlab
    apiUrl: https://gitlab.example.com/api/v4
    sshUrl: ssh://git@gitlab.example.com
    knownHosts: ["gitlab.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"]
`,
);

// Each case is a process start-up and little else, so they run side by side.
describe.concurrent('deploykey webhook print', () => {
  it("prints a GitHub host's URL, events and secret variable", async ({ expect }) => {
    const result = await runCli(['webhook', 'print', '--host', 'github', '--url', 'https://dk.internal/'], {
      DEPLOYKEY_CONFIG: config,
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('https://dk.internal/v1/webhooks/github/github');
    expect(result.stdout).toContain('Workflow jobs, Workflow runs');
    expect(result.stdout).toContain('DEPLOYKEY_WEBHOOK_GITHUB_SECRET');
  });

  it("prints a GitLab host's hook events and token variable", async ({ expect }) => {
    const result = await runCli(['webhook', 'print', '--host', 'gitlab-eu'], { DEPLOYKEY_CONFIG: config });
    expect(result.stdout).toContain('/v1/webhooks/gitlab/gitlab-eu');
    expect(result.stdout).toContain('Job events, Pipeline events');
    expect(result.stdout).toContain('DEPLOYKEY_WEBHOOK_GITLAB_EU_SECRET');
  });

  it('exits 2 with the usage for a missing or unknown host', async ({ expect }) => {
    const lines = [['webhook', 'print'], ['webhook', 'print', '--host', 'nope'], ['webhook']];
    const results = await Promise.all(lines.map((args) => runCli(args, { DEPLOYKEY_CONFIG: config })));
    for (const [i, result] of results.entries()) {
      expect(result.code, lines[i]!.join(' ')).toBe(2);
      expect(result.stderr).toContain('usage: deploykey webhook print');
    }
  });
});
