// Each command loads only what it needs, so the client commands a CI job runs start fast.
import { existsSync } from 'node:fs';
import { parseCommandArgs } from './client/command-support.ts';
import { CLIENT_COMMAND_LINES, CLIENT_COMMANDS } from './client/commands.ts';
import { exitOnFailure } from './failure.ts';
import { helpRequested, printUsage } from './help.ts';
import type { Role } from './serve.command.ts';
import { UsageError } from './usage-error.ts';

const USAGE = `usage: deploykey <command> [options]

commands:
  serve [--role api|worker|controller|all] [--no-migrate]   run the service (default role: all)
  worker                                          run only the revoke worker and reconciler
  migrate                                         apply pending database migrations
  token create|list|revoke                        manage API tokens (deploykey token --help)
  policy check --issuer I --provider P --repo R   explain what the access policy decides (deploykey policy --help)
  audit verify|export                             check or export the audit log (deploykey audit --help)
${CLIENT_COMMAND_LINES}
  openapi [--output FILE] [--check]               write the HTTP contract (openapi.yaml) from the routes
  webhook print --host ID                         how to send a host's CI job-end webhooks here
  sandbox [--json] [--logs] [--tls] [--api-port N]  run the service on local stand-ins (from a checkout)

Every command answers --help with its options and examples.

examples:
  eval "$(deploykey issue --provider github --repo acme/models)"
  deploykey migrate
  deploykey serve --role api
  DEPLOYKEY_CONFIG=config.yaml deploykey serve`;

const SERVE_USAGE = `usage: deploykey serve [--role api|worker|controller|all] [--no-migrate]
       deploykey worker [--no-migrate]

Runs the service with the settings of the environment and DEPLOYKEY_CONFIG: the HTTP API, the
revoke worker and reconciler, the Kubernetes controller (Jobs annotated deploykey.dev/keys), or
all of them (the default; the controller only with kubernetes.enabled). Pending migrations are applied first unless
--no-migrate. "worker" is "serve --role worker". SIGTERM or SIGINT stops it within 10 s.

examples:
  deploykey serve
  DEPLOYKEY_CONFIG=config.yaml deploykey serve --role api --no-migrate
  deploykey worker`;

const MIGRATE_USAGE = `usage: deploykey migrate

Applies the pending database migrations (DATABASE_URL) and names them; "serve" does the same at
start unless --no-migrate.

examples:
  DATABASE_URL=postgres://deploykey@db/deploykey deploykey migrate`;

const ROLES: Role[] = ['api', 'worker', 'controller', 'all'];

// The stand-ins are for a checkout only: the production build and image leave sandbox/ out. Its
// path is built at run time so that the compiler does not follow it into the build.
const SANDBOX_ENTRY = new URL('../../sandbox/cli.ts', import.meta.url);

interface SandboxModule {
  SANDBOX_USAGE: string;
  runSandboxCommand(args: string[]): Promise<void>;
}

async function loadSandbox(): Promise<SandboxModule> {
  if (!existsSync(SANDBOX_ENTRY)) {
    throw new Error(
      'the sandbox is not part of this build; run it from a checkout: npm ci && npm run sandbox',
    );
  }
  return (await import(SANDBOX_ENTRY.href)) as SandboxModule;
}

/** The usage of each service command, loaded only when asked for. */
const SERVICE_USAGES: Record<string, () => Promise<string>> = {
  serve: async () => SERVE_USAGE,
  worker: async () => SERVE_USAGE,
  migrate: async () => MIGRATE_USAGE,
  token: async () => (await import('./token.command.ts')).TOKEN_USAGE,
  policy: async () => (await import('./policy.command.ts')).POLICY_USAGE,
  audit: async () => (await import('./audit.command.ts')).AUDIT_USAGE,
  openapi: async () => (await import('./openapi.command.ts')).OPENAPI_USAGE,
  webhook: async () => (await import('./webhook.command.ts')).WEBHOOK_USAGE,
  sandbox: async () => (await loadSandbox()).SANDBOX_USAGE,
};

async function usageOf(command: string): Promise<string | undefined> {
  return CLIENT_COMMANDS[command]?.usage ?? (await SERVICE_USAGES[command]?.());
}

async function serve(command: 'serve' | 'worker', args: string[]): Promise<void> {
  const { values } = parseCommandArgs(
    { args, options: { role: { type: 'string' }, 'no-migrate': { type: 'boolean' } } },
    SERVE_USAGE,
  );
  if (command === 'worker' && values.role) throw new UsageError('worker takes no --role', SERVE_USAGE);
  const role = (command === 'worker' ? 'worker' : (values.role ?? 'all')) as Role;
  if (!ROLES.includes(role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`, SERVE_USAGE);
  const { startService, stopOnSignals } = await import('./serve.command.ts');
  stopOnSignals(await startService(role, { migrate: !values['no-migrate'] }));
}

async function migrate(args: string[]): Promise<void> {
  parseCommandArgs({ args, options: {} }, MIGRATE_USAGE);
  const { assertDatabaseReachable, loadConfigOrExplain } = await import('./startup.ts');
  const { migrateDatabase } = await import('../db/migrate.ts');
  const config = loadConfigOrExplain();
  await assertDatabaseReachable(config);
  const applied = await migrateDatabase(config.databaseUrl);
  console.error(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
}

async function run([command, ...rest]: string[]): Promise<void> {
  if (command === undefined) throw new UsageError('missing command', USAGE);
  if (command === 'help' || command === '--help' || command === '-h') {
    printUsage((rest[0] && (await usageOf(rest[0]))) || USAGE);
    return;
  }
  const usage = await usageOf(command);
  if (usage === undefined) throw new UsageError(`unknown command "${command}"`, USAGE);
  if (helpRequested(rest)) {
    printUsage(usage);
    return;
  }
  const client = CLIENT_COMMANDS[command];
  if (client) return client.run(rest);
  switch (command) {
    case 'serve':
    case 'worker':
      return serve(command, rest);
    case 'migrate':
      return migrate(rest);
    case 'token':
      return (await import('./token.command.ts')).runTokenCommand(rest);
    case 'policy':
      return (await import('./policy.command.ts')).runPolicyCommand(rest);
    case 'audit':
      return (await import('./audit.command.ts')).runAuditCommand(rest);
    case 'openapi':
      return (await import('./openapi.command.ts')).runOpenApiCommand(rest);
    case 'webhook':
      return (await import('./webhook.command.ts')).runWebhookCommand(rest);
    case 'sandbox':
      return (await loadSandbox()).runSandboxCommand(rest);
  }
}

run(process.argv.slice(2)).catch((error: Error) => exitOnFailure(error, USAGE));
