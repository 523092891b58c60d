import { userInfo } from 'node:os';
import { createApiTokens, toTokenView } from '../auth/api-tokens.ts';
import { createDb } from '../db/database.ts';
import type { Role } from '../model/schemas.ts';
import { ROLES } from '../model/values.ts';
import { type Clock, systemClock } from '../time.ts';
import { parseCommandArgs } from './client/command-support.ts';
import { parseDuration } from './duration.ts';
import { assertDatabaseReachable, loadConfigOrExplain } from './startup.ts';
import { UsageError } from './usage-error.ts';

export const TOKEN_USAGE = `usage: deploykey token create --name NAME --role issuer|auditor|admin [--expires 90d] [--json]
       deploykey token list [--json]
       deploykey token revoke NAME|ID [--json]

Manages API tokens in the database (needs DATABASE_URL and the service's other settings).
The token value is printed once, on stdout, when it is created; only its SHA-256 hash is kept.

examples:
  deploykey token create --name jenkins --role issuer --expires 90d
  deploykey token create --name security --role auditor --json
  deploykey token revoke jenkins`;

// userInfo() throws for a uid with no passwd entry, which is how containers usually run
// (Kubernetes runAsUser); this module is loaded by every command, so that must not be fatal.
function operatorName(): string {
  try {
    return `operator:${userInfo().username}`;
  } catch {
    return `operator:uid-${process.getuid?.() ?? 'unknown'}`;
  }
}

const OPERATOR = operatorName();

export async function runTokenCommand(args: string[], clock: Clock = systemClock): Promise<void> {
  const [action, ...rest] = args;
  if (action !== 'create' && action !== 'list' && action !== 'revoke') {
    throw new UsageError(action ? `unknown token command "${action}"` : 'missing token command', TOKEN_USAGE);
  }
  const { values, positionals } = parseCommandArgs(
    {
      args: rest,
      options: {
        name: { type: 'string' },
        role: { type: 'string' },
        expires: { type: 'string' },
        json: { type: 'boolean' },
      },
      allowPositionals: action === 'revoke',
    },
    TOKEN_USAGE,
  );
  if (action === 'create' && (!values.name || !values.role)) {
    throw new UsageError('token create needs --name and --role', TOKEN_USAGE);
  }
  if (values.role && !ROLES.includes(values.role as Role)) {
    throw new UsageError(`--role must be one of ${ROLES.join(', ')}`, TOKEN_USAGE);
  }
  const expiresSeconds = values.expires === undefined ? undefined : parseDuration(values.expires);
  if (values.expires !== undefined && !expiresSeconds) {
    throw new UsageError('--expires takes a duration such as 3600, 30m, 12h or 90d', TOKEN_USAGE);
  }
  if (action === 'revoke' && positionals.length !== 1)
    throw new UsageError('token revoke needs NAME or ID', TOKEN_USAGE);

  const config = loadConfigOrExplain();
  await assertDatabaseReachable(config);
  const db = createDb(config.databaseUrl, { max: 1 });
  const tokens = createApiTokens(db.db, clock);
  try {
    if (action === 'create') {
      const expiresAt = expiresSeconds ? new Date(clock().getTime() + expiresSeconds * 1000) : undefined;
      const { token, row } = await tokens.create({
        name: values.name!,
        role: values.role as Role,
        actor: OPERATOR,
        ...(expiresAt ? { expiresAt } : {}),
      });
      if (values.json) {
        process.stdout.write(`${JSON.stringify({ ...toTokenView(row), token })}\n`);
      } else {
        process.stdout.write(`${token}\n`);
        console.error(
          `created ${row.role} token "${row.name}"${expiresAt ? `, expires ${expiresAt.toISOString()}` : ''}; it is not shown again`,
        );
      }
      return;
    }
    if (action === 'list') {
      const views = (await tokens.list()).map(toTokenView);
      if (values.json) {
        process.stdout.write(`${JSON.stringify(views)}\n`);
        return;
      }
      for (const t of views) {
        const state = t.revokedAt
          ? 'revoked'
          : t.expiresAt && new Date(t.expiresAt) <= clock()
            ? 'expired'
            : 'live';
        process.stdout.write(
          `${t.name}\t${t.role}\t${state}\tcreated ${t.createdAt}\texpires ${t.expiresAt ?? 'never'}\n`,
        );
      }
      return;
    }
    const row = await tokens.revoke(positionals[0]!, OPERATOR);
    if (!row) throw new UsageError(`no token named or with id "${positionals[0]}"`, TOKEN_USAGE, 4);
    if (values.json) process.stdout.write(`${JSON.stringify(toTokenView(row))}\n`);
    else console.error(`token "${row.name}" is revoked`);
  } finally {
    await db.close();
  }
}
