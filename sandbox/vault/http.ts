// Shapes shared by the Vault stand-in's backends: the logical request a route sees, what a handler
// returns, Vault's error bodies, its response envelope and its duration and time formats.
import { randomBytes, randomUUID } from 'node:crypto';

export type VaultOperation = 'read' | 'list' | 'create' | 'update' | 'delete' | 'patch';

export interface VaultRequest {
  /** Path below `/v1/`, decoded, no leading slash; list requests always end with `/`. */
  path: string;
  operation: VaultOperation;
  /** JSON body for writes, query parameters for reads, lists and deletes. */
  data: Record<string, unknown>;
  /** Token from `X-Vault-Token` or `Authorization: Bearer`; '' when absent. */
  clientToken: string;
  /** Seconds requested through `X-Vault-Wrap-TTL`; 0 when the response is not wrapped. */
  wrapTtl: number;
}

export interface VaultAuth {
  client_token: string;
  accessor: string;
  policies: string[];
  token_policies: string[];
  metadata: Record<string, string> | null;
  lease_duration: number;
  renewable: boolean;
  entity_id: string;
  token_type: 'service';
  orphan: boolean;
  mfa_requirement: null;
  num_uses: number;
}

export interface VaultResult {
  /** Status other than 200 for a response that still carries the envelope (a deleted KV version). */
  status?: number;
  data?: Record<string, unknown> | null;
  auth?: VaultAuth;
  warnings?: string[];
  /** Answered as is: no envelope, never wrapped. */
  raw?: { status: number; body?: unknown };
}

export type VaultHandler = (
  request: VaultRequest,
  match: RegExpExecArray,
) => VaultResult | null | Promise<VaultResult | null>;

export interface VaultRoute {
  pattern: RegExp;
  /** `token` (default): the client token must pass the ACL; `none`: login and lookup paths. */
  auth?: 'token' | 'none';
  /** Runs before the token check (Vault validates wrapping tokens there). */
  validate?: (request: VaultRequest) => void;
  /** Vault's existence check: a write to something that exists needs `update`, otherwise `create`. */
  exists?: (match: RegExpExecArray) => boolean;
  operations: Partial<Record<VaultOperation, VaultHandler>>;
}

export interface VaultFailure extends Error {
  vaultStatus: number;
  vaultErrors: string[];
}

export function vaultFailure(status: number, ...errors: string[]): VaultFailure {
  return Object.assign(new Error(errors[0] ?? `status ${status}`), {
    vaultStatus: status,
    vaultErrors: errors,
  });
}

export function isVaultFailure(error: unknown): error is VaultFailure {
  return error instanceof Error && typeof (error as Partial<VaultFailure>).vaultStatus === 'number';
}

/** go-multierror's rendering, which Vault puts verbatim into `errors` for core failures. */
export function multiError(...messages: string[]): string {
  const noun = messages.length === 1 ? '1 error occurred' : `${messages.length} errors occurred`;
  return `${noun}:\n${messages.map((message) => `\t* ${message}\n`).join('')}\n`;
}

export const badRequest = (message: string) => vaultFailure(400, message);
export const PERMISSION_DENIED = 'permission denied';

export function envelope(result: VaultResult, mountType: string): Record<string, unknown> {
  return {
    request_id: randomUUID(),
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    data: result.data ?? null,
    wrap_info: null,
    warnings: result.warnings?.length ? result.warnings : null,
    auth: result.auth ?? null,
    mount_type: mountType,
  };
}

/** Go's RFC3339Nano in UTC, which trims trailing zeros of the fraction. */
export function goTime(date: Date): string {
  const iso = date.toISOString();
  return iso.replace(/\.(\d*?)0*Z$/, (_all, fraction: string) => (fraction ? `.${fraction}Z` : 'Z'));
}

// Wall-clock nanoseconds: the epoch at start plus the monotonic clock since, as Go's time.Now()
// gives them; Date alone stops at milliseconds.
const START_NS = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

/** Now in Go's RFC3339Nano, as Vault writes the times it records (`2018-03-22T02:24:06.945319214Z`). */
export function goTimeNow(): string {
  const nanos = START_NS + process.hrtime.bigint();
  const seconds = new Date(Number(nanos / 1_000_000n)).toISOString().slice(0, 19);
  const fraction = (nanos % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${seconds}${fraction === '' ? '' : `.${fraction}`}Z`;
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-9,
  us: 1e-6,
  µs: 1e-6,
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
  d: 86400,
};

/** parseutil.ParseDurationSecond: seconds as a number or numeric string, or a Go duration (`1h30m`, `2d`). */
export function parseDurationSeconds(value: unknown, field: string): number {
  if (value === undefined || value === null || value === '') return 0;
  if (typeof value === 'number' && Number.isFinite(value)) return Math.floor(value);
  if (typeof value === 'string') {
    const text = value.trim();
    if (/^-?\d+$/.test(text)) return Number(text);
    const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/g)];
    if (parts.length > 0 && parts.map((part) => part[0]).join('') === text) {
      return Math.floor(parts.reduce((sum, part) => sum + Number(part[1]) * DURATION_UNITS[part[2]!]!, 0));
    }
  }
  throw badRequest(`error parsing ${field}: invalid duration ${JSON.stringify(value)}`);
}

/** Vault's TypeCommaStringSlice: a JSON array or a comma-separated string. */
export function stringList(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  const items = Array.isArray(value) ? value : String(value).split(',');
  return items.map((item) => String(item).trim()).filter((item) => item !== '');
}

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export function base62(length: number): string {
  return [...randomBytes(length)].map((byte) => BASE62[byte % 62]).join('');
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** strutil.GlobbedStringsMatch: `*` only at the start and/or end of the pattern. */
export function globMatch(pattern: string, value: string): boolean {
  if (pattern === '*') return true;
  const leading = pattern.startsWith('*');
  const trailing = pattern.endsWith('*') && pattern.length > 1;
  const core = pattern.slice(leading ? 1 : 0, trailing ? -1 : undefined);
  if (leading && trailing) return value.includes(core);
  if (leading) return value.endsWith(core);
  if (trailing) return value.startsWith(core);
  return value === pattern;
}
