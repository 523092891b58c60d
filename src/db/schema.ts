import type { ColumnType, Insertable, Selectable, Updateable } from 'kysely';
import type { BindingKind, Delivery, KeyStatus, RevokeReason, Role } from '../model/schemas.ts';

/** A binding as Postgres returns it: written as a KeyBinding (src/model/schemas.ts), not checked again. */
type StoredKeyBinding = { kind: BindingKind } & Record<string, string>;

type Timestamp = ColumnType<Date, Date | string, Date | string>;

export interface DeployKeysTable {
  id: string;
  provider: string;
  repository: string;
  job_id: string;
  status: ColumnType<KeyStatus, KeyStatus | undefined, KeyStatus>;
  delivery: Delivery;
  fingerprint: string | null;
  public_key: string | null;
  host_key_id: string | null;
  vault_path: string | null;
  /** Accessor of the wrapping token a `wrapped` key was handed out in (never the token). */
  wrap_accessor: string | null;
  caller: string;
  /** The caller id plus the claims the allowing rule bound (src/keys/ownership.ts). */
  owner: string;
  /** The repository's identity on its host; null only for duplicates revoked by migration 004. */
  repository_key: string | null;
  caller_details: ColumnType<Record<string, unknown>, string | undefined, string>;
  /** The platform job the key is bound to (src/keys/binding.ts), or null. */
  binding: ColumnType<StoredKeyBinding | null, string | null | undefined, string | null>;
  /** Lookup strings of the binding; an ending event finds the key by one of them. */
  binding_refs: ColumnType<string[], string[] | undefined, string[]>;
  created_at: ColumnType<Date, Date | string | undefined, never>;
  activated_at: Timestamp | null;
  expires_at: Timestamp;
  revoke_requested_at: Timestamp | null;
  revoked_at: Timestamp | null;
  revoke_reason: RevokeReason | null;
  failure_reason: string | null;
  attempts: ColumnType<number, number | undefined, number>;
  last_error: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface AuditEventsTable {
  seq: string;
  at: Timestamp;
  actor: string;
  action: string;
  key_id: string | null;
  provider: string | null;
  repository: string | null;
  job_id: string | null;
  details: ColumnType<Record<string, unknown>, string, never>;
  prev_hash: string;
  hash: string;
}

export interface ApiTokensTable {
  id: string;
  name: string;
  role: Role;
  token_sha256: string;
  created_at: ColumnType<Date, Date | string | undefined, never>;
  created_by: string;
  expires_at: Timestamp | null;
  revoked_at: Timestamp | null;
  last_used_at: Timestamp | null;
}

export interface Database {
  api_tokens: ApiTokensTable;
  deploy_keys: DeployKeysTable;
  audit_events: AuditEventsTable;
}

export type DeployKeyRow = Selectable<DeployKeysTable>;
export type NewDeployKeyRow = Insertable<DeployKeysTable>;
export type DeployKeyUpdate = Updateable<DeployKeysTable>;
export type AuditEventRow = Selectable<AuditEventsTable>;
export type ApiTokenRow = Selectable<ApiTokensTable>;
