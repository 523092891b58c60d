import { loadFileConfig } from '../config.ts';
import { webhookSecretNames } from '../webhooks/webhook-secrets.ts';
import { parseCommandArgs } from './client/command-support.ts';
import { UsageError } from './usage-error.ts';

export const WEBHOOK_USAGE = `usage: deploykey webhook print --host ID [--url BASE]

Prints how to point a host's CI webhooks at this service: the URL, the events to send and where
the shared secret goes. Reads the config file (DEPLOYKEY_CONFIG) for the host's type.

  --host ID    a configured host id (hosts[].id)
  --url BASE   the service's public base URL (default: https://deploykey.example.com)

examples:
  deploykey webhook print --host github
  deploykey webhook print --host gitlab --url https://deploykeys.internal`;

function instructions(hostId: string, type: 'github' | 'gitlab', base: string): string {
  const names = webhookSecretNames(hostId);
  const url = `${base.replace(/\/+$/, '')}/v1/webhooks/${type}/${hostId}`;
  const secret = [
    `secret:  a random value (e.g. openssl rand -hex 32), given to the service as ${names.current}`,
    `         (or ${names.current}_FILE); during a rotation keep the old one in ${names.previous}`,
  ];
  if (type === 'github') {
    return [
      `URL:     ${url}`,
      "where:   repository or organisation Settings > Webhooks, or the GitHub App's webhook",
      'content: application/json',
      'events:  Workflow jobs, Workflow runs',
      ...secret,
    ].join('\n');
  }
  return [
    `URL:     ${url}`,
    'where:   project or group Settings > Webhooks',
    'events:  Job events, Pipeline events',
    ...secret.map((line) => line.replace('secret: ', 'token:  ')),
  ].join('\n');
}

export async function runWebhookCommand(args: string[]): Promise<void> {
  const [action, ...rest] = args;
  if (action !== 'print')
    throw new UsageError(action ? `unknown action "${action}"` : 'missing action', WEBHOOK_USAGE);
  const { values } = parseCommandArgs(
    { args: rest, options: { host: { type: 'string' }, url: { type: 'string' } } },
    WEBHOOK_USAGE,
  );
  if (!values.host) throw new UsageError('--host is required', WEBHOOK_USAGE);
  const host = loadFileConfig().hosts.find((candidate) => candidate.id === values.host);
  if (!host) throw new UsageError(`no host "${values.host}" is configured`, WEBHOOK_USAGE);
  if (host.type === 'gitea') {
    throw new UsageError(
      `host "${host.id}" is a Gitea/Forgejo host, which announces no CI job ends; webhooks are for GitHub and GitLab hosts`,
      WEBHOOK_USAGE,
    );
  }
  process.stdout.write(
    `${instructions(host.id, host.type, values.url ?? 'https://deploykey.example.com')}\n`,
  );
}
