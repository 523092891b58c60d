// A key's guarded state change and its audit event as one statement. Changes of one shape (the same
// states left, the same columns set) that arrive together are merged by the group commit into one
// UPDATE over all their keys, each changed row appending its own audit event in that statement.
import { type CompiledQuery, type Kysely, sql } from 'kysely';
import { type AuditKeyFields, auditAppendArguments, auditAppendCall } from '../audit/audit.repository.ts';
import type { MergeableStatement } from '../audit/audit-group-commit.ts';
import type { Database, DeployKeyUpdate, KeyStatus } from '../db/schema.ts';
import type { KeyAudit } from './key.repository.ts';

type UpdateColumn = keyof DeployKeyUpdate;

// The columns a state change sets, with their SQL types: merged values travel as typed arrays.
const COLUMN_TYPES: Partial<Record<UpdateColumn, 'text' | 'timestamptz' | 'integer'>> = {
  status: 'text',
  fingerprint: 'text',
  public_key: 'text',
  host_key_id: 'text',
  vault_path: 'text',
  wrap_accessor: 'text',
  activated_at: 'timestamptz',
  revoke_requested_at: 'timestamptz',
  revoked_at: 'timestamptz',
  revoke_reason: 'text',
  failure_reason: 'text',
  last_error: 'text',
  attempts: 'integer',
};

// The audit event names the key from the row the same statement wrote.
export const CHANGED_ROW: AuditKeyFields = {
  keyId: sql.ref('changed.id'),
  provider: sql.ref('changed.provider'),
  repository: sql.ref('changed.repository'),
  jobId: sql.ref('changed.job_id'),
};

interface TransitionInput {
  id: string;
  values: unknown[];
  event: ReturnType<typeof auditAppendArguments>;
}

const isPlainValue = (value: unknown) =>
  value === null || typeof value === 'string' || typeof value === 'number' || value instanceof Date;

/** The change's columns in a fixed order, or undefined when one cannot travel in a typed array. */
function mergeableColumns(update: DeployKeyUpdate): UpdateColumn[] | undefined {
  const columns = (Object.keys(update) as UpdateColumn[])
    .filter((column) => update[column] !== undefined)
    .sort();
  const plain = columns.every((column) => COLUMN_TYPES[column] && isPlainValue(update[column]));
  return plain ? columns : undefined;
}

/** One UPDATE for many keys: each input's values are set on its key if the key is in `from`. */
function mergedTransitions(db: Kysely<Database>, from: KeyStatus[], columns: UpdateColumn[]) {
  const typed = (values: unknown[], type: string) => sql`${values}::${sql.raw(type)}[]`;
  return (inputs: TransitionInput[]): CompiledQuery => {
    const arrays = [
      typed(
        inputs.map((input) => input.id),
        'uuid',
      ),
      ...columns.map((column, index) =>
        typed(
          inputs.map((input) => input.values[index]),
          COLUMN_TYPES[column] as string,
        ),
      ),
      ...(['head', 'at', 'actor', 'action', 'details'] as const).map((field) =>
        typed(
          inputs.map((input) => input.event[field]),
          field === 'at' ? 'timestamptz' : 'text',
        ),
      ),
    ];
    const names = ['id', ...columns.map((column) => `new_${column}`)];
    const inputColumns = [...names, 'head', 'at', 'actor', 'action', 'details', 'slot'];
    const assignments = columns.map((column) => sql`${sql.id(column)} = input.${sql.id(`new_${column}`)}`);
    return sql`WITH input AS (
        SELECT * FROM unnest(${sql.join(arrays)}) WITH ORDINALITY
          AS input(${sql.join(inputColumns.map((name) => sql.id(name)))})
      ), changed AS (
        UPDATE deploy_keys AS k SET ${sql.join(assignments)}, updated_at = now()
        FROM input WHERE k.id = input.id AND k.status IN (${sql.join(from)})
        RETURNING k.*, input.slot - 1 AS merge_slot
      )
      SELECT changed.* FROM changed JOIN input ON input.slot - 1 = changed.merge_slot
      CROSS JOIN LATERAL audit_append(input.head, input.at, input.actor, input.action,
        input.details::jsonb, changed.id, changed.provider, changed.repository, changed.job_id) AS appended`.compile(
      db,
    );
  };
}

/**
 * The statement for one guarded change: mergeable with others of its shape when every value it
 * sets is a plain one, otherwise a statement of its own.
 */
export function transitionStatement(
  db: Kysely<Database>,
  id: string,
  from: KeyStatus[],
  update: DeployKeyUpdate,
  audit: KeyAudit,
): CompiledQuery | MergeableStatement<TransitionInput> {
  const columns = mergeableColumns(update);
  if (!columns) {
    const change = db
      .updateTable('deploy_keys')
      .set({ ...update, updated_at: sql<Date>`now()` as unknown as Date })
      .where('id', '=', id)
      .where('status', 'in', from)
      .returningAll();
    return sql`WITH changed AS (${change})
      SELECT changed.* FROM changed CROSS JOIN LATERAL ${auditAppendCall(audit, CHANGED_ROW)} AS appended`.compile(
      db,
    );
  }
  return {
    kind: `transition ${from.join(',')} ${columns.join(',')}`,
    target: id,
    input: { id, values: columns.map((column) => update[column]), event: auditAppendArguments(audit) },
    merge: mergedTransitions(db, from, columns),
  };
}
