// API tokens: random, prefixed `dkr_`, stored only as a SHA-256 hash, shown once at creation.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { appendAuditEvent } from '../audit/audit.repository.ts';
import { coalesced } from '../coalesced.ts';
import type { ApiTokenRow, Database } from '../db/schema.ts';
import { RefusalError } from '../errors.ts';
import type { Role } from '../model/schemas.ts';
import type { Clock } from '../time.ts';

export const API_TOKEN_PREFIX = 'dkr_';
export const TOKEN_NAME_PATTERN = '^[A-Za-z0-9._-]{1,64}$';

const LAST_USE_RESOLUTION_MS = 1_000;

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

export interface ApiTokenView {
  id: string;
  name: string;
  role: Role;
  createdAt: string;
  createdBy: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

export function toTokenView(row: ApiTokenRow): ApiTokenView {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    createdAt: row.created_at.toISOString(),
    createdBy: row.created_by,
    expiresAt: row.expires_at?.toISOString() ?? null,
    revokedAt: row.revoked_at?.toISOString() ?? null,
    lastUsedAt: row.last_used_at?.toISOString() ?? null,
  };
}

export interface NewApiToken {
  name: string;
  role: Role;
  expiresAt?: Date;
  actor: string;
}

/** Inserts the token's hash and its audit event in one transaction; a taken name is a refusal. */
async function insertToken(
  db: Kysely<Database>,
  clock: Clock,
  token: string,
  input: NewApiToken,
): Promise<ApiTokenRow> {
  try {
    return await db.transaction().execute(async (trx) => {
      const created = await trx
        .insertInto('api_tokens')
        .values({
          id: randomUUID(),
          name: input.name,
          role: input.role,
          token_sha256: hashToken(token),
          created_by: input.actor,
          expires_at: input.expiresAt ?? null,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await appendAuditEvent(trx, {
        actor: input.actor,
        action: 'token.created',
        at: clock(),
        details: { tokenId: created.id, name: created.name, role: created.role, expiresAt: input.expiresAt },
      });
      return created;
    });
  } catch (error) {
    if ((error as { code?: string }).code === '23505') {
      throw new RefusalError('token-name-taken', `a token named "${input.name}" already exists`);
    }
    throw error;
  }
}

/**
 * Tokens by their hash, the lookups of requests that arrive together in one query
 * (src/coalesced.ts): every API request starts with one.
 */
function tokensByHash(db: Kysely<Database>) {
  return coalesced(async (hashes: string[]) => {
    const rows = await db.selectFrom('api_tokens').selectAll().where('token_sha256', 'in', hashes).execute();
    const byHash = new Map(rows.map((row) => [row.token_sha256, row]));
    return hashes.map((hash) => byHash.get(hash));
  });
}

async function authenticateToken(
  db: Kysely<Database>,
  clock: () => Date,
  lookUp: (hash: string) => Promise<ApiTokenRow | undefined>,
  token: string,
): Promise<ApiTokenRow | undefined> {
  const row = await lookUp(hashToken(token));
  const now = clock();
  if (!row || row.revoked_at || (row.expires_at && row.expires_at <= now)) return undefined;
  // Last use is informational and kept to the second: a token used many times a second is
  // written once, and losing an update under load is harmless.
  if (!row.last_used_at || now.getTime() - row.last_used_at.getTime() >= LAST_USE_RESOLUTION_MS) {
    db.updateTable('api_tokens')
      .set({ last_used_at: now })
      .where('id', '=', row.id)
      .execute()
      .catch(() => {});
  }
  return row;
}

async function revokeToken(
  db: Kysely<Database>,
  clock: () => Date,
  idOrName: string,
  actor: string,
): Promise<ApiTokenRow | undefined> {
  const byId = /^[0-9a-f-]{36}$/.test(idOrName);
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .updateTable('api_tokens')
      .set({ revoked_at: clock() })
      .where(byId ? 'id' : 'name', '=', idOrName)
      .where('revoked_at', 'is', null)
      .returningAll()
      .executeTakeFirst();
    if (row) {
      await appendAuditEvent(trx, {
        actor,
        action: 'token.revoked',
        at: clock(),
        details: { tokenId: row.id, name: row.name, role: row.role },
      });
      return row;
    }
    return trx
      .selectFrom('api_tokens')
      .selectAll()
      .where(byId ? 'id' : 'name', '=', idOrName)
      .executeTakeFirst();
  });
}

export function createApiTokens(db: Kysely<Database>, clock: Clock) {
  const lookUp = tokensByHash(db);
  return {
    /** Creates a token; the returned `token` is the only time its value is ever available. */
    async create(input: NewApiToken) {
      const token = `${API_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
      const row = await insertToken(db, clock, token, input);
      return { token, row };
    },

    /** The live token with this value, or undefined for unknown, revoked and expired tokens. */
    authenticate: (token: string) => authenticateToken(db, clock, lookUp, token),

    list: () => db.selectFrom('api_tokens').selectAll().orderBy('created_at', 'desc').execute(),

    /** Revokes by id or name; revoking a revoked token changes nothing and audits nothing. */
    revoke: (idOrName: string, actor: string) => revokeToken(db, clock, idOrName, actor),
  };
}

export type ApiTokens = ReturnType<typeof createApiTokens>;
