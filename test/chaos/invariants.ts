// What must hold once the chaos stops: every key ended where it may end, nothing of a dead key is
// left at either host or in Vault, and every key's audit trail is complete.
import type pg from 'pg';
import type { StandIns } from '../../sandbox/stand-ins.ts';
import { keyIdFromTitle, TITLE_PREFIX } from '../../src/hosts/git-host.ts';
import { PROVIDERS, REPOSITORIES } from './traffic.ts';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

interface KeyRow {
  id: string;
  provider: string;
  repository: string;
  status: string;
  vault_path: string | null;
  expires_at: Date;
  activated_at: Date | null;
  binding: { kind?: string } | null;
}

export async function keyRows(pool: pg.Pool): Promise<KeyRow[]> {
  const { rows } = await pool.query<KeyRow>(
    'SELECT id, provider, repository, status, vault_path, expires_at, activated_at, binding FROM deploy_keys',
  );
  return rows;
}

/** Keys that are not yet where they may stay: pending, revoking, or active past their expiry. */
export function unsettled(rows: KeyRow[], now = new Date()): KeyRow[] {
  return rows.filter(
    (row) =>
      row.status === 'pending' ||
      row.status === 'revoking' ||
      (row.status === 'active' && row.expires_at.getTime() <= now.getTime()),
  );
}

const summarize = (items: string[]) =>
  items.length === 0 ? 'none' : `${items.length}: ${items.slice(0, 5).join('; ')}`;

function checkStatuses(rows: KeyRow[], now: Date): Check {
  const bad = unsettled(rows, now).map(
    (row) => `${row.id} ${row.status} (expired ${row.expires_at.toISOString()})`,
  );
  const counts: Record<string, number> = {};
  for (const row of rows) counts[row.status] = (counts[row.status] ?? 0) + 1;
  return {
    name: 'every key revoked, failed, or active within its TTL',
    ok: bad.length === 0 && rows.length > 0,
    detail: bad.length ? `unsettled ${summarize(bad)}` : `${rows.length} keys: ${JSON.stringify(counts)}`,
  };
}

function checkHosts(rows: KeyRow[], standIns: StandIns): Check {
  const byId = new Map(rows.map((row) => [row.id, row]));
  const bad: string[] = [];
  let seen = 0;
  for (const provider of PROVIDERS) {
    const state = standIns[provider].state;
    for (const path of REPOSITORIES) {
      const repository = state.findRepository(path);
      if (!repository) continue;
      for (const key of state.listKeys(repository.id)) {
        if (!key.title.startsWith(TITLE_PREFIX)) continue;
        seen += 1;
        const keyId = keyIdFromTitle(key.title);
        const row = keyId ? byId.get(keyId) : undefined;
        if (row?.status !== 'active' || row.provider !== provider || row.repository !== path) {
          bad.push(`${provider} ${path} "${key.title}" (key ${row?.status ?? 'unknown'})`);
        }
      }
    }
  }
  return {
    name: 'no host key of ours left for a revoked, failed or unknown key',
    ok: bad.length === 0,
    detail: bad.length ? summarize(bad) : `${seen} host keys of ours left, all of active keys`,
  };
}

async function vaultLeaves(standIns: StandIns, folder: string): Promise<string[]> {
  const { addr, token, mount } = standIns.vault;
  const response = await fetch(`${addr}/v1/${mount}/metadata/${folder}?list=true`, {
    headers: { 'x-vault-token': token },
  });
  if (response.status === 404) return [];
  if (!response.ok) throw new Error(`Vault list ${folder}: ${response.status}`);
  const body = (await response.json()) as { data: { keys: string[] } };
  const leaves: string[] = [];
  for (const name of body.data.keys) {
    if (name.endsWith('/')) leaves.push(...(await vaultLeaves(standIns, `${folder}${name}`)));
    else leaves.push(`${folder}${name}`);
  }
  return leaves;
}

async function checkVault(rows: KeyRow[], standIns: StandIns): Promise<Check> {
  const livePaths = new Set(rows.filter((row) => row.status === 'active').map((row) => row.vault_path));
  const leaves = await vaultLeaves(standIns, 'deploy-keys/');
  const bad = leaves.filter((path) => !livePaths.has(path));
  return {
    name: 'no Vault secret left for a revoked or failed key',
    ok: bad.length === 0,
    detail: bad.length ? summarize(bad) : `${leaves.length} secrets left, all of active keys`,
  };
}

async function checkAuditTrails(rows: KeyRow[], pool: pg.Pool): Promise<Check> {
  const { rows: events } = await pool.query<{ key_id: string; action: string; n: number }>(
    `SELECT key_id, action, count(*)::int AS n FROM audit_events WHERE key_id IS NOT NULL GROUP BY key_id, action`,
  );
  const counts = new Map<string, Record<string, number>>();
  for (const event of events) {
    const entry = counts.get(event.key_id) ?? {};
    entry[event.action] = event.n;
    counts.set(event.key_id, entry);
  }
  const bad: string[] = [];
  for (const row of rows) {
    const seen = counts.get(row.id) ?? {};
    const n = (action: string) => seen[action] ?? 0;
    const problems: string[] = [];
    if (n('key.requested') !== 1) problems.push(`key.requested×${n('key.requested')}`);
    const wasIssued = row.activated_at !== null;
    if (n('key.issued') !== (wasIssued ? 1 : 0)) problems.push(`key.issued×${n('key.issued')}`);
    if (n('key.revoked') !== (row.status === 'revoked' ? 1 : 0))
      problems.push(`key.revoked×${n('key.revoked')}`);
    if (n('key.issue_failed') !== (row.status === 'failed' ? 1 : 0)) {
      problems.push(`key.issue_failed×${n('key.issue_failed')}`);
    }
    if (problems.length) bad.push(`${row.id} ${row.status}: ${problems.join(', ')}`);
  }
  return {
    name: 'audit trail complete for every key',
    ok: bad.length === 0,
    detail: bad.length
      ? summarize(bad)
      : `${rows.length} keys, ${events.reduce((sum, e) => sum + e.n, 0)} key events`,
  };
}

export async function checkKeyInvariants(pool: pg.Pool, standIns: StandIns): Promise<Check[]> {
  const now = new Date();
  const rows = await keyRows(pool);
  return [
    checkStatuses(rows, now),
    checkHosts(rows, standIns),
    await checkVault(rows, standIns),
    await checkAuditTrails(rows, pool),
  ];
}
