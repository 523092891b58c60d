// The parts of issuing that are not the happy path: answering a replayed request, and undoing an
// issue that could not finish.
import type { DeployKeyRow } from '../db/schema.ts';
import { RefusalError } from '../errors.ts';
import { type GitHost, HostError, keyIdFromTitle, keyTitle } from '../hosts/git-host.ts';
import { describeFailure, toIssueError } from './dependency-errors.ts';
import type { KeyServiceDeps } from './key-service-deps.ts';
import { removeVaultRead } from './kubernetes-grant.ts';
import type { DeployKeyPair } from './ssh-keypair.ts';

export interface IssueResult {
  row: DeployKeyRow;
  knownHosts: string[];
  privateKey?: string;
  /** Only in the first answer: a replay never hands out a token that unwraps the key. */
  wrapToken?: string;
  wrapAccessor?: string;
  replayed: boolean;
}

/** What an interrupted issue is known to have created, besides what its title and row tell. */
export interface Created {
  hostKeyId?: string;
  wrapAccessor?: string;
}

// A repository the host does not have holds no key of ours; without this an issue for an unknown
// repository could never be undone and its row would stay `pending` for ever.
const listedOrNone = (host: GitHost, repository: string) =>
  host.listDeployKeys(repository).catch((error: unknown) => {
    if (error instanceof HostError && error.kind === 'not-found') return [];
    throw error;
  });

/**
 * The host key and the Vault secret, made at the same time since neither needs the other. Both
 * settle before this returns or throws, so an undo finds no write still in flight; the host key's id
 * is known to the undo even when the Vault write is what failed.
 */
export async function createAtHostAndInVault(step: {
  host: GitHost;
  secrets: KeyServiceDeps['secrets'];
  pending: DeployKeyRow;
  pair: DeployKeyPair;
  knownHosts: string[];
  callerId: string;
  created: Created;
}): Promise<void> {
  const { host, secrets, pending, pair, knownHosts, callerId, created } = step;
  const { id, job_id: jobId, repository, expires_at: expiresAt } = pending;
  const [added, written] = await Promise.allSettled([
    host.addDeployKey({
      repository,
      title: keyTitle(id, jobId),
      publicKey: pair.publicKey,
      expiresAt,
      caller: callerId,
    }),
    secrets.write(
      pending.vault_path ?? '',
      {
        privateKey: pair.privateKey,
        publicKey: pair.publicKey,
        knownHosts: knownHosts.join('\n'),
        fingerprint: pair.fingerprint,
      },
      { keyId: id, expiresAt },
    ),
  ]);
  if (added.status === 'fulfilled') created.hostKeyId = added.value.hostKeyId;
  if (added.status === 'rejected') throw added.reason;
  if (written.status === 'rejected') throw written.reason;
}

/** Why a retried request cannot get the first answer again, if it cannot. */
function refuseUnlessReplayable(row: DeployKeyRow, requestHash: string): void {
  if (row.request_hash !== requestHash) {
    throw new RefusalError(
      'idempotency-key-reused',
      'this Idempotency-Key was used with a different request',
      {
        extra: { keyId: row.id },
      },
    );
  }
  if (row.status === 'pending') {
    throw new RefusalError(
      'request-in-progress',
      'the first request with this Idempotency-Key is still running',
      {
        retryAfterSeconds: 1,
        extra: { keyId: row.id },
      },
    );
  }
  if (row.status === 'failed') {
    throw new RefusalError(
      'idempotent-request-failed',
      `the first request with this Idempotency-Key failed (${row.failure_reason ?? 'unknown'}); use a new key to try again`,
      { extra: { keyId: row.id } },
    );
  }
}

export function createIssueSupport(deps: KeyServiceDeps, hostFor: (provider: string) => GitHost) {
  const { keys, hosts, secrets, queue, logger } = deps;

  /**
   * Removes whatever an interrupted issue left at the host (found by our title) and in Vault, then
   * ends the row `failed`. If anything cannot be removed now the row stays `pending`, so the
   * reconciler tries again; nothing is ever forgotten.
   */
  async function undoIssue(row: DeployKeyRow, reason: string, created: Created = {}): Promise<boolean> {
    const host = hosts.get(row.provider);
    try {
      await queue.cancel(row.id).catch(() => {});
      if (host) {
        const leftovers = created.hostKeyId
          ? [created.hostKeyId]
          : (await listedOrNone(host, row.repository))
              .filter((key) => keyIdFromTitle(key.title) === row.id)
              .map((key) => key.hostKeyId);
        for (const id of leftovers) await host.deleteDeployKey(row.repository, id);
      }
      const wrapAccessor = created.wrapAccessor ?? row.wrap_accessor;
      if (wrapAccessor) await secrets.revokeWrapToken(wrapAccessor);
      if (row.vault_path) await secrets.destroy(row.vault_path, row.id);
      await removeVaultRead(deps, row);
    } catch (error) {
      const failure = describeFailure(error);
      logger.warn(
        { keyId: row.id, failure },
        'undo of a failed issue is incomplete; the reconciler will retry',
      );
      await keys.recordAttempt(row.id, `undo: ${failure}`);
      return false;
    }
    await keys.transition(
      row.id,
      ['pending'],
      { status: 'failed', failure_reason: reason },
      { actor: deps.systemActor, action: 'key.issue_failed', details: { reason } },
    );
    return true;
  }

  /**
   * The first answer again for a retried request. A `response` key is read back from Vault; a
   * `wrapped` one gets its token's accessor only, since a new token would be a second way to the key.
   */
  async function replay(row: DeployKeyRow, requestHash: string): Promise<IssueResult> {
    refuseUnlessReplayable(row, requestHash);
    const knownHosts = await hostFor(row.provider)
      .knownHosts()
      .catch(() => []);
    const result: IssueResult = { row, knownHosts, replayed: true };
    if (row.wrap_accessor) result.wrapAccessor = row.wrap_accessor;
    if (row.status === 'active' && row.vault_path && row.delivery === 'response') {
      try {
        const secret = await secrets.read(row.vault_path);
        if (secret) result.privateKey = secret.privateKey;
      } catch (error) {
        throw toIssueError(error, row.repository);
      }
    }
    return result;
  }

  return { undoIssue, replay };
}
