// A key's insert or guarded state change and its audit event as one statement. Those of one shape
// (the same columns written, the same states left) that arrive together are merged by the group
// commit into one INSERT or UPDATE over all their keys, each written row appending its own audit
// event in that statement.
import { type CompiledQuery, type Kysely, type OperationNodeSource, type RawBuilder, sql } from 'kysely';
import { type AuditKeyFields, auditAppendArguments, auditAppendCall } from '../audit/audit.repository.ts';
import type { MergeableStatement } from '../audit/audit-group-commit.ts';
import type {
  Database,
  DeployKeyRow,
  DeployKeysTable,
  DeployKeyUpdate,
  NewDeployKeyRow,
} from '../db/schema.ts';
import type { KeyStatus } from '../model/schemas.ts';
import type { KeyAudit } from './key.repository.ts';

type Column = keyof DeployKeysTable;
type ColumnType = 'text' | 'timestamptz' | 'integer' | 'jsonb' | 'text[]';

// The columns a merged statement may write, with their SQL types: merged values travel as one
// typed array per column (a JSON value or a text array as its JSON text).
const COLUMN_TYPES: Partial<Record<Column, ColumnType>> = {
  provider: 'text',
  repository: 'text',
  repository_key: 'text',
  job_id: 'text',
  status: 'text',
  delivery: 'text',
  fingerprint: 'text',
  public_key: 'text',
  host_key_id: 'text',
  vault_path: 'text',
  wrap_accessor: 'text',
  caller: 'text',
  owner: 'text',
  caller_details: 'jsonb',
  binding: 'jsonb',
  binding_refs: 'text[]',
  created_at: 'timestamptz',
  activated_at: 'timestamptz',
  expires_at: 'timestamptz',
  revoke_requested_at: 'timestamptz',
  revoked_at: 'timestamptz',
  revoke_reason: 'text',
  failure_reason: 'text',
  attempts: 'integer',
  last_error: 'text',
  idempotency_key: 'text',
  request_hash: 'text',
};

const carries: Record<ColumnType, (value: unknown) => boolean> = {
  text: (value) => value === null || typeof value === 'string',
  jsonb: (value) => value === null || typeof value === 'string',
  timestamptz: (value) => value === null || value instanceof Date,
  integer: (value) => typeof value === 'number',
  'text[]': (value) => Array.isArray(value) && value.every((item) => typeof item === 'string'),
};

// The audit event names the key from the row the same statement wrote.
const CHANGED_ROW: AuditKeyFields = {
  keyId: sql.ref('changed.id'),
  provider: sql.ref('changed.provider'),
  repository: sql.ref('changed.repository'),
  jobId: sql.ref('changed.job_id'),
};

/** One write of a key (an insert or update, `RETURNING *`) and its audit event, as one statement. */
export const auditedWrite = (change: OperationNodeSource, audit: KeyAudit, at: Date) =>
  sql<DeployKeyRow>`WITH changed AS (${change})
    SELECT changed.* FROM changed CROSS JOIN LATERAL ${auditAppendCall(audit, CHANGED_ROW, at)} AS appended`;

interface KeyWrite {
  id: string;
  values: unknown[];
  event: ReturnType<typeof auditAppendArguments>;
}

/** The written columns in a fixed order, or undefined when one of them cannot be merged. */
function mergeableColumns(values: Partial<Record<Column, unknown>>): Column[] | undefined {
  const columns = (Object.keys(values) as Column[]).filter((column) => values[column] !== undefined).sort();
  const typed = columns.every((column) => {
    const type = COLUMN_TYPES[column];
    return type !== undefined && carries[type](values[column]);
  });
  return typed ? columns : undefined;
}

/** `input`: one row per write, its id, new values, audit event and slot (1-based, in order). */
function inputRows(columns: Column[], writes: KeyWrite[]): RawBuilder<unknown> {
  const array = (values: unknown[], type: string) => sql`${values}::${sql.raw(type)}[]`;
  const arrays = [
    array(
      writes.map((write) => write.id),
      'uuid',
    ),
    ...columns.map((column, index) => {
      const type = COLUMN_TYPES[column] as ColumnType;
      const values = writes.map((write) => write.values[index]);
      if (type === 'text[]')
        return array(
          values.map((value) => JSON.stringify(value)),
          'text',
        );
      return array(values, type === 'jsonb' ? 'text' : type);
    }),
    ...(['head', 'at', 'actor', 'action', 'details'] as const).map((field) =>
      array(
        writes.map((write) => write.event[field]),
        field === 'at' ? 'timestamptz' : 'text',
      ),
    ),
  ];
  const names = [
    'id',
    ...columns.map((column) => `new_${column}`),
    'head',
    'at',
    'actor',
    'action',
    'details',
  ];
  return sql`SELECT * FROM unnest(${sql.join(arrays)}) WITH ORDINALITY
    AS input(${sql.join([...names, 'slot'].map((name) => sql.id(name)))})`;
}

/** A column's new value in the input row, as the column's own type. */
function newValue(column: Column): RawBuilder<unknown> {
  const value = sql.ref(`input.new_${column}`);
  if (COLUMN_TYPES[column] === 'jsonb') return sql`${value}::jsonb`;
  if (COLUMN_TYPES[column] === 'text[]') return sql`ARRAY(SELECT jsonb_array_elements_text(${value}::jsonb))`;
  return value;
}

// Each written row appends its own event, naming its key; `merge_slot` tells the group commit
// which caller the row answers.
const APPEND_PER_ROW = sql`SELECT changed.*, input.slot - 1 AS merge_slot
  FROM changed JOIN input ON input.id = changed.id
  CROSS JOIN LATERAL audit_append(input.head, input.at, input.actor, input.action,
    input.details::jsonb, changed.id, changed.provider, changed.repository, changed.job_id) AS appended`;

function mergedUpdates(db: Kysely<Database>, from: KeyStatus[], columns: Column[]) {
  return (writes: KeyWrite[]): CompiledQuery => {
    const assignments = columns.map((column) => sql`${sql.id(column)} = ${newValue(column)}`);
    return sql`WITH input AS (${inputRows(columns, writes)}), changed AS (
        UPDATE deploy_keys AS k SET ${sql.join(assignments)}, updated_at = now()
        FROM input WHERE k.id = input.id AND k.status IN (${sql.join(from)})
        RETURNING k.*
      ) ${APPEND_PER_ROW}`.compile(db);
  };
}

function mergedInserts(db: Kysely<Database>, columns: Column[]) {
  return (writes: KeyWrite[]): CompiledQuery => {
    const written = ['id' as Column, ...columns];
    const values = [sql.ref('input.id'), ...columns.map(newValue)];
    return sql`WITH input AS (${inputRows(columns, writes)}), changed AS (
        INSERT INTO deploy_keys (${sql.join(written.map((column) => sql.id(column)))})
        SELECT ${sql.join(values)} FROM input ORDER BY input.slot
        RETURNING *
      ) ${APPEND_PER_ROW}`.compile(db);
  };
}

const keyWrite = (
  id: string,
  values: Partial<Record<Column, unknown>>,
  columns: Column[],
  audit: KeyAudit,
  at: Date,
) => ({
  id,
  values: columns.map((column) => values[column]),
  event: auditAppendArguments(audit, at),
});

/**
 * The statement for one guarded change: mergeable with others of its shape when every value it
 * sets can travel in a typed array, otherwise a statement of its own.
 */
export function transitionStatement(
  db: Kysely<Database>,
  id: string,
  from: KeyStatus[],
  update: DeployKeyUpdate,
  audit: KeyAudit,
  at: Date,
): CompiledQuery | MergeableStatement<KeyWrite> {
  const columns = mergeableColumns(update);
  if (!columns) {
    const change = db
      .updateTable('deploy_keys')
      .set({ ...update, updated_at: sql<Date>`now()` as unknown as Date })
      .where('id', '=', id)
      .where('status', 'in', from)
      .returningAll();
    return auditedWrite(change, audit, at).compile(db);
  }
  return {
    kind: `transition ${from.join(',')} ${columns.join(',')}`,
    target: id,
    input: keyWrite(id, update, columns, audit, at),
    merge: mergedUpdates(db, from, columns),
  };
}

/** The statement for a new key's row, mergeable with other inserts of the same columns. */
export function insertStatement(
  db: Kysely<Database>,
  row: NewDeployKeyRow & { id: string },
  audit: KeyAudit,
  at: Date,
): CompiledQuery | MergeableStatement<KeyWrite> {
  const { id, ...values } = row;
  const columns = mergeableColumns(values);
  if (!columns) {
    return auditedWrite(db.insertInto('deploy_keys').values(row).returningAll(), audit, at).compile(db);
  }
  return {
    kind: `insert ${columns.join(',')}`,
    target: id,
    input: keyWrite(id, values, columns, audit, at),
    merge: mergedInserts(db, columns),
  };
}
