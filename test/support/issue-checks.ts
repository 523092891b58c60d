// What the key-issuing tests look at behind the API: the stand-in hosts' deploy keys, Vault through
// node-vault, and the problem+json answers the service gives.
import vault from 'node-vault';
import { expect } from 'vitest';
import type { SandboxDeployKey } from '../../sandbox/shared/host-state.ts';
import { TITLE_PREFIX } from '../../src/hosts/git-host.ts';
import { ownerScope } from '../../src/keys/ownership.ts';
import type { Harness } from './service-harness.ts';

export type Provider = 'github' | 'gitlab' | 'gitea';
type ApiAnswer = Awaited<ReturnType<Harness['api']>>;

/** A node-vault client holding the stand-in's root token, as an operator would inspect Vault. */
export function vaultClient(harness: Harness, token = harness.standIns.vault.token): vault.client {
  return vault({ endpoint: harness.standIns.vault.addr, token });
}

/** The private key stored at `path` below the KV v2 mount, read the way a consumer reads it. */
export async function readVaultPrivateKey(harness: Harness, path: string): Promise<string> {
  const { mount } = harness.standIns.vault;
  const answer = await vaultClient(harness).read(`${mount}/data/${path}`);
  const key = answer?.data?.data?.['ssh-privatekey'];
  expect(typeof key, `Vault ${mount}/data/${path} holds ssh-privatekey`).toBe('string');
  return key as string;
}

/** The HTTP status Vault answers for the metadata of `path` (200 while any version exists, else 404). */
export async function vaultMetadataStatus(harness: Harness, path: string): Promise<number> {
  const { mount } = harness.standIns.vault;
  try {
    await vaultClient(harness).read(`${mount}/metadata/${path}`);
    return 200;
  } catch (error) {
    const status = (error as { response?: { statusCode?: number } }).response?.statusCode;
    if (status === undefined) throw error;
    return status;
  }
}

/** Deploy keys carrying this service's title prefix on `repository` at the stand-in host. */
export function ourHostKeys(harness: Harness, provider: Provider, repository: string): SandboxDeployKey[] {
  const state = harness.standIns[provider].state;
  const repo = state.findRepository(repository);
  if (!repo) return [];
  return state.listKeys(repo.id).filter((key) => key.title.startsWith(TITLE_PREFIX));
}

/** Asserts an RFC 9457 answer: status, media type, `code` and a `detail` matching `detail`. */
export function expectProblem(
  answer: ApiAnswer,
  status: number,
  code: string | undefined,
  detail: RegExp | undefined,
): void {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(answer.body).toMatchObject({ status, type: expect.any(String), title: expect.any(String) });
  if (code) expect(answer.body.code).toBe(code);
  expect(typeof answer.body.detail, 'a detail that says what went wrong').toBe('string');
  if (detail) expect(answer.body.detail).toMatch(detail);
}

/** The caller's keys for one job, newest first, through the API. */
export async function keysOfJob(harness: Harness, jobId: string) {
  const listed = await harness.api('GET', `/v1/keys?jobId=${encodeURIComponent(jobId)}`);
  expect(listed.status, listed.text).toBe(200);
  return listed.body.items as Array<Record<string, unknown> & { id: string; status: string }>;
}

/**
 * After a failed issue: no key of ours for the job on the repository, no Vault secret at the job's
 * path, and the one row of the job ended `failed` with a reason the caller can read.
 */
export async function expectNothingLeftBehind(
  harness: Harness,
  request: { provider: Provider; repository: string; jobId: string },
): Promise<Record<string, unknown>> {
  const [row, ...more] = await keysOfJob(harness, request.jobId);
  expect(more).toEqual([]);
  expect(row).toBeDefined();
  const leftovers = ourHostKeys(harness, request.provider, request.repository).filter(
    (key) => key.title.includes(row?.id ?? '-') || key.title.endsWith(` job=${request.jobId}`),
  );
  expect(leftovers).toEqual([]);
  // The harness's `ci` caller owns the keys it issues (src/keys/ownership.ts).
  const path = `deploy-keys/${ownerScope('token:ci')}/${request.jobId}/${request.provider}/${request.repository}`;
  expect(await vaultMetadataStatus(harness, path)).toBe(404);
  const fetched = await harness.api('GET', `/v1/keys/${row?.id}`);
  expect(fetched.status).toBe(200);
  expect(fetched.body.status).toBe('failed');
  expect(fetched.body.failureReason).toEqual(expect.stringMatching(/\S/));
  return fetched.body;
}
