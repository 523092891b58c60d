import { readFileSync } from 'node:fs';
import { createAccessPolicy } from '../auth/access-policy.ts';
import { ConfigError, loadFileConfig } from '../config.ts';
import type { Delivery } from '../model/schemas.ts';
import { DELIVERIES } from '../model/values.ts';
import { parseCommandArgs } from './client/command-support.ts';
import { parseDuration } from './duration.ts';
import { UsageError } from './usage-error.ts';

export const POLICY_USAGE = `usage: deploykey policy check --issuer ID|api-token [--token-name NAME] [--claims JSON | --claims-file FILE]
                             --provider P --repo R [--ttl 1h] [--delivery vault|response|wrapped]
                             [--active N] [--json]

Explains what the access policy in DEPLOYKEY_CONFIG decides for a caller and a request, rule by
rule, without issuing anything or contacting any service. Exit 0 when allowed, 3 when denied.

examples:
  deploykey policy check --issuer github-actions --claims '{"repository":"acme/models","ref":"refs/heads/main"}' \\
    --provider github --repo acme/models
  deploykey policy check --issuer cluster --claims-file pod-claims.json --provider github --repo acme/datasets --ttl 12h
  deploykey policy check --issuer api-token --token-name jenkins --provider github --repo acme/models --delivery response`;

function readClaims(inline: string | undefined, file: string | undefined): Record<string, unknown> {
  if (inline && file) throw new UsageError('give --claims or --claims-file, not both', POLICY_USAGE);
  if (!inline && !file) return {};
  let text: string;
  try {
    text = inline ?? readFileSync(file!, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code}`, POLICY_USAGE);
  }
  try {
    const claims = JSON.parse(text) as unknown;
    if (claims && typeof claims === 'object' && !Array.isArray(claims))
      return claims as Record<string, unknown>;
  } catch {}
  throw new UsageError('the claims must be a JSON object, as in a decoded token payload', POLICY_USAGE);
}

export async function runPolicyCommand(args: string[]): Promise<void> {
  const [action, ...rest] = args;
  if (action !== 'check') {
    throw new UsageError(
      action ? `unknown policy command "${action}"` : 'missing policy command',
      POLICY_USAGE,
    );
  }
  const { values } = parseCommandArgs(
    {
      args: rest,
      options: {
        issuer: { type: 'string' },
        'token-name': { type: 'string' },
        claims: { type: 'string' },
        'claims-file': { type: 'string' },
        provider: { type: 'string' },
        repo: { type: 'string' },
        ttl: { type: 'string' },
        delivery: { type: 'string' },
        active: { type: 'string' },
        json: { type: 'boolean' },
      },
    },
    POLICY_USAGE,
  );
  if (!values.issuer || !values.provider || !values.repo) {
    throw new UsageError('policy check needs --issuer, --provider and --repo', POLICY_USAGE);
  }
  const delivery = (values.delivery ?? 'vault') as Delivery;
  if (!DELIVERIES.includes(delivery))
    throw new UsageError(`--delivery must be one of ${DELIVERIES.join(', ')}`, POLICY_USAGE);
  const active = Number(values.active ?? '0');
  if (!Number.isInteger(active) || active < 0)
    throw new UsageError('--active must be a whole number', POLICY_USAGE);

  let file: ReturnType<typeof loadFileConfig>;
  try {
    file = loadFileConfig();
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message, undefined, 1);
    throw error;
  }
  const ttlSeconds = values.ttl === undefined ? file.keys.defaultTtlSeconds : parseDuration(values.ttl);
  if (!ttlSeconds) throw new UsageError('--ttl takes a duration such as 3600, 30m, 2h or 1d', POLICY_USAGE);

  const policy = createAccessPolicy(file.policy);
  const subject = {
    issuer: values.issuer,
    ...(values['token-name'] ? { tokenName: values['token-name'] } : {}),
    claims: readClaims(values.claims, values['claims-file']),
  };
  const request = { provider: values.provider, repository: values.repo, ttlSeconds, delivery };
  const explanation = policy.explain(subject, request, active);

  if (values.json) {
    process.stdout.write(`${JSON.stringify({ request, ...explanation })}\n`);
  } else {
    const { decision } = explanation;
    process.stdout.write(
      decision.allowed ? `allowed by rule "${decision.rule}"\n` : `denied: ${decision.message}\n`,
    );
    for (const rule of explanation.rules) process.stdout.write(`  ${rule.name}: ${rule.why}\n`);
    if (explanation.rules.length === 0)
      process.stdout.write('  (the policy has no rules: everything is denied)\n');
  }
  if (!explanation.decision.allowed) process.exitCode = 3;
}
