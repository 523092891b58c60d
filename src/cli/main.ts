import { parseArgs } from 'node:util';
import { migrateDatabase } from '../db/migrate.ts';
import { type Role, startService, stopOnSignals } from './serve.command.ts';
import { assertDatabaseReachable, loadConfigOrExplain, StartupError } from './startup.ts';
import { runTokenCommand } from './token.command.ts';
import { UsageError } from './usage-error.ts';

const USAGE = `usage: deploykey <command> [options]

commands:
  serve [--role api|worker|all] [--no-migrate]   run the service (default role: all)
  worker                                          run only the revoke worker and reconciler
  migrate                                         apply pending database migrations
  token create|list|revoke                        manage API tokens (deploykey token --help)
  sandbox [--json] [--api-port N]                 run the service on local stand-ins

examples:
  deploykey migrate
  deploykey serve --role api
  DEPLOYKEY_CONFIG=config.yaml deploykey serve`;

const ROLES: Role[] = ['api', 'worker', 'all'];

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
      stopOnSignals(await startService(role, { migrate: !values['no-migrate'] }));
      return;
    }
    case 'migrate': {
      parseArgs({ args: rest, options: {}, strict: true });
      const config = loadConfigOrExplain();
      await assertDatabaseReachable(config);
      const applied = await migrateDatabase(config.databaseUrl);
      console.error(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
      return;
    }
    case 'token':
      await runTokenCommand(rest);
      return;
    case 'sandbox': {
      const { runSandboxCommand } = await import('../../sandbox/cli.ts');
      await runSandboxCommand(rest);
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
  if (error.code?.startsWith('ERR_PARSE_ARGS')) {
    console.error(`deploykey: ${error.message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (error instanceof StartupError) {
    console.error(`deploykey: ${error.message}`);
    process.exit(1);
  }
  console.error(`deploykey: ${error.message}`);
  process.exit(1);
});
