// What the revoke tests look at behind the service: the host stand-ins, Vault through node-vault,
// the audit log and the metrics page, each read the way an operator would check it.
import vault from 'node-vault';
import { expect } from 'vitest';
import type { Harness } from './service-harness.ts';

export type Provider = 'github' | 'gitlab' | 'gitea';

export interface IssuedKey {
  id: string;
  provider: Provider;
  repository: string;
  jobId: string;
  expiresAt: string;
  vault: { mount: string; path: string };
  cloneUrl: string;
  knownHosts: string[];
  privateKey?: string;
}

export async function issueKey(
  harness: Harness,
  request: {
    provider: Provider;
    repository: string;
    jobId: string;
    ttlSeconds: number;
    delivery?: 'vault' | 'response';
  },
  token?: string,
): Promise<IssuedKey> {
  const response = await harness.api('POST', '/v1/keys', { body: request, ...(token ? { token } : {}) });
  expect(response.status, response.text).toBe(201);
  return response.body as IssuedKey;
}

/** The titles of the deploy keys the host stand-in holds on `repository`. */
export function hostKeyTitles(harness: Harness, provider: Provider, repository: string): string[] {
  const state = harness.standIns[provider].state;
  const repo = state.findRepository(repository);
  if (!repo) throw new Error(`${provider} stand-in has no repository ${repository}`);
  return state.listKeys(repo.id).map((key) => key.title);
}

/** The host's own ids of the deploy keys it holds on `repository`. */
export function hostKeyIds(harness: Harness, provider: Provider, repository: string): string[] {
  const state = harness.standIns[provider].state;
  return state.listKeys(state.findRepository(repository)!.id).map((key) => String(key.id));
}

export function hostHasKey(harness: Harness, key: Pick<IssuedKey, 'id' | 'provider' | 'repository'>) {
  return hostKeyTitles(harness, key.provider, key.repository).some((title) => title.includes(key.id));
}

/** HTTP status of a KV v2 metadata read, as node-vault reports it: 200, or 404 once destroyed. */
export async function vaultMetadataStatus(harness: Harness, key: Pick<IssuedKey, 'vault'>): Promise<number> {
  const client = vault({ endpoint: harness.standIns.vault.addr, token: harness.standIns.vault.token });
  try {
    await client.read(`${key.vault.mount}/metadata/${key.vault.path}`);
    return 200;
  } catch (error) {
    const status = (error as { response?: { statusCode?: number } }).response?.statusCode;
    if (typeof status !== 'number') throw error;
    return status;
  }
}

export async function auditCount(harness: Harness, keyId: string, action: string): Promise<number> {
  const { rows } = await harness.database.pool.query<{ count: string }>(
    'SELECT count(*) AS count FROM audit_events WHERE key_id = $1 AND action = $2',
    [keyId, action],
  );
  return Number(rows[0]?.count ?? 0);
}

export async function auditDetails(
  harness: Harness,
  keyId: string,
  action: string,
): Promise<Record<string, unknown>[]> {
  const { rows } = await harness.database.pool.query<{ details: Record<string, unknown> }>(
    'SELECT details FROM audit_events WHERE key_id = $1 AND action = $2 ORDER BY seq',
    [keyId, action],
  );
  return rows.map((row) => row.details);
}

export async function keyStatus(harness: Harness, keyId: string): Promise<string | undefined> {
  return (await harness.service.container.keys.findById(keyId))?.status;
}

/** Resolves once the key is `revoked` in Postgres, and returns what the API says about it. */
export async function revokedView(harness: Harness, keyId: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await keyStatus(harness, keyId)) === 'revoked') {
      const view = await harness.api('GET', `/v1/keys/${keyId}`);
      expect(view.status).toBe(200);
      return view.body as IssuedKey & { status: string; revokeReason: string; revokedAt: string };
    }
    if (Date.now() > deadline) {
      const row = await harness.service.container.keys.findById(keyId);
      throw new Error(
        `key ${keyId} not revoked within ${timeoutMs} ms: ${row?.status} (attempts ${row?.attempts}, ${row?.last_error})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** One sample's value from a Prometheus text page (0 when absent). */
export function metricValue(page: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([label, value]) => `${label}="${value}"`);
  let total = 0;
  for (const line of page.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (match?.[1] !== name) continue;
    const present = match[2] ?? '';
    if (wanted.every((pair) => present.includes(pair))) total += Number(match[3]);
  }
  return total;
}

export async function metricsPage(harness: Harness): Promise<string> {
  const response = await harness.api('GET', '/metrics', { token: null });
  expect(response.status).toBe(200);
  return response.text;
}
