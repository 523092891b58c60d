// Each command loads only what it needs, so the client commands a CI job runs start fast.
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ClientError } from './client/client-error.ts';
import type { Role } from './serve.command.ts';
import { UsageError } from './usage-error.ts';

const USAGE = `usage: deploykey <command> [options]

commands:
  serve [--role api|worker|all] [--no-migrate]   run the service (default role: all)
  worker                                          run only the revoke worker and reconciler
  migrate                                         apply pending database migrations
  token create|list|revoke                        manage API tokens (deploykey token --help)
  policy check --issuer I --provider P --repo R   explain what the access policy decides (deploykey policy --help)
  audit verify|export                             check or export the audit log (deploykey audit --help)
  issue --provider P --repo R [--job J]           get a deploy key for a CI job (deploykey issue --help)
  complete [--job J]                              revoke the job's keys now that it is done
  revoke ID                                       revoke one key now
  list [--job J] [--repo R] [--status S]          list keys (these four reach the service at DEPLOYKEY_URL)
  openapi [--output FILE] [--check]               write the HTTP contract (openapi.yaml) from the routes
  sandbox [--json] [--api-port N]                 run the service on local stand-ins (from a checkout)

examples:
  eval "$(deploykey issue --provider github --repo acme/models)"
  deploykey migrate
  deploykey serve --role api
  DEPLOYKEY_CONFIG=config.yaml deploykey serve`;

const ROLES: Role[] = ['api', 'worker', 'all'];

// The stand-ins are for a checkout only: the production build and image leave sandbox/ out. Its
// path is built at run time so that the compiler does not follow it into the build.
const SANDBOX_ENTRY = new URL('../../sandbox/cli.ts', import.meta.url);

async function runSandbox(args: string[]): Promise<void> {
  if (!existsSync(SANDBOX_ENTRY)) {
    throw new Error(
      'the sandbox is not part of this build; run it from a checkout: npm ci && npm run sandbox',
    );
  }
  const sandbox = (await import(SANDBOX_ENTRY.href)) as { runSandboxCommand(args: string[]): Promise<void> };
  await sandbox.runSandboxCommand(args);
}

async function run(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
    case 'worker': {
      const { values } = parseArgs({
        args: rest,
        options: { role: { type: 'string' }, 'no-migrate': { type: 'boolean' } },
        strict: true,
      });
      const role = (command === 'worker' ? 'worker' : (values.role ?? 'all')) as Role;
      if (!ROLES.includes(role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
      const { startService, stopOnSignals } = await import('./serve.command.ts');
      stopOnSignals(await startService(role, { migrate: !values['no-migrate'] }));
      return;
    }
    case 'migrate': {
      parseArgs({ args: rest, options: {}, strict: true });
      const { assertDatabaseReachable, loadConfigOrExplain } = await import('./startup.ts');
      const { migrateDatabase } = await import('../db/migrate.ts');
      const config = loadConfigOrExplain();
      await assertDatabaseReachable(config);
      const applied = await migrateDatabase(config.databaseUrl);
      console.error(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
      return;
    }
    case 'token': {
      const { runTokenCommand } = await import('./token.command.ts');
      await runTokenCommand(rest);
      return;
    }
    case 'policy': {
      const { runPolicyCommand } = await import('./policy.command.ts');
      await runPolicyCommand(rest);
      return;
    }
    case 'audit': {
      const { runAuditCommand } = await import('./audit.command.ts');
      await runAuditCommand(rest);
      return;
    }
    case 'issue': {
      const { runIssueCommand } = await import('./client/issue.command.ts');
      await runIssueCommand(rest);
      return;
    }
    case 'complete': {
      const { runCompleteCommand } = await import('./client/complete.command.ts');
      await runCompleteCommand(rest);
      return;
    }
    case 'revoke': {
      const { runRevokeCommand } = await import('./client/revoke.command.ts');
      await runRevokeCommand(rest);
      return;
    }
    case 'list': {
      const { runListCommand } = await import('./client/list.command.ts');
      await runListCommand(rest);
      return;
    }
    case 'openapi': {
      const { runOpenApiCommand } = await import('./openapi.command.ts');
      await runOpenApiCommand(rest);
      return;
    }
    case 'sandbox': {
      await runSandbox(rest);
      return;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.error(USAGE);
      return;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

run(process.argv.slice(2)).catch((error: Error & { code?: string }) => {
  if (error instanceof UsageError) {
    console.error(`deploykey: ${error.message}\n\n${error.usage ?? USAGE}`);
    process.exit(error.exitCode);
  }
  if (error instanceof ClientError) {
    console.error(`deploykey: ${error.message}`);
    process.exit(error.exitCode);
  }
  if (error.code?.startsWith('ERR_PARSE_ARGS')) {
    console.error(`deploykey: ${error.message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (error.name === 'StartupError') {
    console.error(`deploykey: ${error.message}`);
    process.exit(1);
  }
  console.error(`deploykey: ${error.message}`);
  process.exit(1);
});
