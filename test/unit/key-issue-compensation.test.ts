// Each compensation of the issue flow, on fake dependencies: a failure at any provisioning step
// removes exactly what the issue had created before it (nothing of other keys), ends the key
// `failed` with its reason audited, and a revoke asked while the key was pending is carried out.
import { beforeEach, describe, expect, it } from 'vitest';
import { DomainError } from '../../src/errors.ts';
import { HostError } from '../../src/hosts/git-host.ts';
import type { Caller } from '../../src/keys/caller.ts';
import { createKeyService, type KeyService } from '../../src/keys/key.service.ts';
import type { KeyServiceDeps } from '../../src/keys/key-service-deps.ts';
import type { Delivery as DeliveryMode } from '../../src/model/schemas.ts';
import { VaultError } from '../../src/vault/secret-store.ts';
import {
  createKeyWorld,
  fakeKeyServiceDeps,
  type IssueStep,
  issuerCaller,
  type KeyWorld,
  kubernetesCaller,
  type Resource,
} from '../support/key-fakes.ts';

let world: KeyWorld;
let deps: KeyServiceDeps;
let service: KeyService;
let jobCounter = 0;

beforeEach(() => {
  world = createKeyWorld();
  deps = fakeKeyServiceDeps(world);
  service = createKeyService(deps);
  leaveAnotherKeysResources(world);
});

/** What another key holds at every dependency; no undo may touch it. */
function leaveAnotherKeysResources(w: KeyWorld): void {
  w.hostKeys.get('acme/models')!.push({
    hostKeyId: 'theirs',
    title: 'deploykey-rotator:00000000-0000-4000-8000-000000000000 job=other',
    publicKey: 'ssh-ed25519 AAAA',
    readOnly: true,
  });
  w.secrets.set('deploy-keys/o-other/other/github/acme/models', {
    secret: { privateKey: 'p', publicKey: 'ssh-ed25519 AAAA', knownHosts: '', fingerprint: 'f' },
    keyId: '00000000-0000-4000-8000-000000000000',
  });
  w.grants.add('00000000-0000-4000-8000-000000000000');
  w.wrapTokens.add('accessor-theirs');
  w.scheduledRevokes.set('00000000-0000-4000-8000-000000000000', new Date('2030-01-02T04:00:00Z'));
}

/** Everything that lives at the host, in Vault and in the queue, in a comparable form. */
function resources(w: KeyWorld) {
  return {
    hostKeys: [...w.hostKeys.entries()].map(([repository, keys]) => [
      repository,
      keys.map((k) => k.hostKeyId),
    ]),
    secrets: [...w.secrets.keys()].sort(),
    grants: [...w.grants].sort(),
    wrapTokens: [...w.wrapTokens].sort(),
    scheduledRevokes: [...w.scheduledRevokes.keys()].sort(),
  };
}

const issue = (caller: Caller, delivery: DeliveryMode) => {
  jobCounter += 1;
  return service.issue(caller, {
    provider: 'github',
    repository: 'acme/models',
    jobId: `job-${jobCounter}`,
    delivery,
  });
};

const onlyKey = () => {
  const rows = [...world.rows.values()];
  expect(rows).toHaveLength(1);
  return rows[0]!;
};

const auditOf = (keyId: string) => world.audit.filter((event) => event.keyId === keyId);

async function issuedCount(): Promise<number> {
  const { values } = await deps.metrics.keysIssued.get();
  return values.reduce((sum, value) => sum + value.value, 0);
}

async function expectIssueError(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error, 'the issue fails').toBeInstanceOf(DomainError);
  expect((error as DomainError).code).toBe(code);
}

interface FailureCase {
  step: IssueStep;
  caller: 'issuer' | 'kubernetes';
  delivery: DeliveryMode;
  error: Error;
  /** What existed when the step failed, and must be gone again. */
  createdBefore: Resource[];
  code: string;
  reason: string;
}

const hostDown = () => new HostError('github', 'unavailable', 'github answered 503', { status: 503 });
const CASES: FailureCase[] = [
  {
    // The host and Vault writes run at the same time: the secret exists when the host refuses.
    step: 'host-add',
    caller: 'kubernetes',
    delivery: 'vault',
    error: hostDown(),
    createdBefore: ['vault-secret'],
    code: 'host-failed',
    reason: 'host github: unavailable (503)',
  },
  {
    step: 'vault-write',
    caller: 'issuer',
    delivery: 'response',
    error: new VaultError('unavailable', 'Vault answered 503', { status: 503 }),
    createdBefore: ['host-key'],
    code: 'vault-unavailable',
    reason: 'vault: unavailable (503)',
  },
  {
    step: 'kubernetes-grant',
    caller: 'kubernetes',
    delivery: 'vault',
    error: new VaultError('forbidden', 'permission denied', { status: 403 }),
    createdBefore: ['host-key', 'vault-secret'],
    code: 'vault-failed',
    reason: 'vault: forbidden (403)',
  },
  {
    step: 'wrap',
    caller: 'issuer',
    delivery: 'wrapped',
    error: new VaultError('timeout', 'no answer in 5000 ms'),
    createdBefore: ['host-key', 'vault-secret'],
    code: 'vault-timeout',
    reason: 'vault: timeout',
  },
  {
    step: 'schedule-revoke',
    caller: 'kubernetes',
    delivery: 'vault',
    error: new Error('connect ECONNREFUSED 127.0.0.1:6379'),
    createdBefore: ['host-key', 'kubernetes-grant', 'vault-secret'],
    code: 'queue-unavailable',
    reason: 'queue: unavailable',
  },
  {
    step: 'schedule-revoke',
    caller: 'issuer',
    delivery: 'wrapped',
    error: new Error('connect ECONNREFUSED 127.0.0.1:6379'),
    createdBefore: ['host-key', 'vault-secret', 'wrap-token'],
    code: 'queue-unavailable',
    reason: 'queue: unavailable',
  },
  {
    step: 'activate',
    caller: 'kubernetes',
    delivery: 'vault',
    error: new Error('Connection terminated unexpectedly'),
    createdBefore: ['host-key', 'kubernetes-grant', 'revoke-job', 'vault-secret'],
    code: 'internal',
    reason: 'internal error',
  },
  {
    step: 'activate',
    caller: 'issuer',
    delivery: 'wrapped',
    error: new Error('Connection terminated unexpectedly'),
    createdBefore: ['host-key', 'revoke-job', 'vault-secret', 'wrap-token'],
    code: 'internal',
    reason: 'internal error',
  },
];

describe('an issue that fails at a provisioning step', () => {
  it.each(CASES.map((c) => ({ ...c, undone: c.createdBefore.join(', ') })))(
    'fails at $step ($caller, $delivery): removes $undone again and ends failed',
    async ({ step, caller, delivery, error, createdBefore, code, reason }) => {
      const before = resources(world);
      world.failing.set(step, error);

      await expectIssueError(
        issue(caller === 'kubernetes' ? kubernetesCaller() : issuerCaller(), delivery),
        code,
      );

      expect([...world.created].sort(), 'what existed when the step failed').toEqual(createdBefore);
      expect(resources(world), 'everything the issue created is gone, nothing else').toEqual(before);
      const row = onlyKey();
      expect(row).toMatchObject({ status: 'failed', failure_reason: reason });
      expect(auditOf(row.id).map((event) => event.action)).toEqual(['key.requested', 'key.issue_failed']);
      expect(auditOf(row.id)[1]).toMatchObject({ actor: 'system:test', details: { reason } });
      expect(await issuedCount()).toBe(0);
    },
  );

  it('issues normally when no step fails, so the failures above are the steps failing', async () => {
    const before = resources(world);
    const result = await issue(kubernetesCaller(), 'vault');
    expect(result.row.status).toBe('active');
    expect([...world.created].sort()).toEqual(['host-key', 'kubernetes-grant', 'revoke-job', 'vault-secret']);
    expect(resources(world)).not.toEqual(before);
    expect(auditOf(result.row.id).map((event) => event.action)).toEqual(['key.requested', 'key.issued']);
    expect(await issuedCount()).toBe(1);
  });

  it('keeps the key pending with the failure recorded when the undo cannot finish, and a retried undo ends it', async () => {
    const before = resources(world);
    world.failing.set('vault-write', new VaultError('unavailable', 'Vault answered 503', { status: 503 }));
    world.failingRemovals.set('host-key', hostDown());

    await expectIssueError(issue(issuerCaller(), 'vault'), 'vault-unavailable');

    const stuck = onlyKey();
    expect(stuck).toMatchObject({
      status: 'pending',
      attempts: 1,
      last_error: 'undo: host github: unavailable (503)',
    });
    expect(resources(world), 'the host key is still there').not.toEqual(before);
    expect(auditOf(stuck.id).map((event) => event.action)).toEqual(['key.requested']);

    // The reconciler's later pass over keys stuck pending.
    world.failingRemovals.clear();
    expect(await service.undoIssue(stuck, 'pending-timeout')).toBe(true);
    expect(resources(world)).toEqual(before);
    expect(onlyKey()).toMatchObject({ status: 'failed', failure_reason: 'pending-timeout' });
  });

  it('removes what it created when the reconciler failed the key meanwhile, and audits the failure once', async () => {
    const before = resources(world);
    world.duringHostAdd = async (keyId) => {
      await deps.keys.transition(
        keyId,
        ['pending'],
        { status: 'failed', failure_reason: 'pending-timeout' },
        { actor: 'system:test', action: 'key.issue_failed', details: { reason: 'pending-timeout' } },
      );
    };

    await expectIssueError(issue(issuerCaller(), 'wrapped'), 'issue-interrupted');

    expect([...world.created].sort()).toEqual(['host-key', 'revoke-job', 'vault-secret', 'wrap-token']);
    expect(resources(world)).toEqual(before);
    const row = onlyKey();
    expect(row).toMatchObject({ status: 'failed', failure_reason: 'pending-timeout' });
    expect(auditOf(row.id).map((event) => event.action)).toEqual(['key.requested', 'key.issue_failed']);
  });
});

describe('a revoke asked while the key is pending', () => {
  it('is recorded at once and carried out as soon as the key is active', async () => {
    const caller = issuerCaller();
    world.duringHostAdd = async (keyId) => {
      const marked = await service.revokeKey(caller, keyId);
      expect(marked).toMatchObject({ status: 'pending', revoke_reason: 'manual' });
    };

    const result = await issue(caller, 'vault');

    expect(result.row).toMatchObject({ status: 'revoking', revoke_reason: 'manual' });
    expect(world.revokesRunNow).toEqual([result.row.id]);
    const audit = auditOf(result.row.id);
    expect(audit.map((event) => event.action)).toEqual([
      'key.requested',
      'key.revoke_requested',
      'key.issued',
      'key.revoke_requested',
    ]);
    expect(audit[1]!.details).toEqual({ reason: 'manual', whileIssuing: true });
    expect(audit[3]!.details).toEqual({ reason: 'manual' });
  });

  it('keeps the reason of a job completed while its key was pending', async () => {
    const caller = issuerCaller();
    world.duringHostAdd = async () => {
      await service.completeJob(caller, `job-${jobCounter}`);
    };

    const result = await issue(caller, 'response');

    expect(result.row).toMatchObject({ status: 'revoking', revoke_reason: 'job-completed' });
    expect(result.privateKey, 'the caller still gets the answer it asked for').toMatch(/PRIVATE KEY/);
    expect(world.revokesRunNow).toEqual([result.row.id]);
  });

  it('leaves nothing to revoke when the issue then fails: the key ends failed, no revoke runs', async () => {
    const before = resources(world);
    const caller = issuerCaller();
    world.duringHostAdd = async (keyId) => {
      await service.revokeKey(caller, keyId);
    };
    world.failing.set('schedule-revoke', new Error('connect ECONNREFUSED 127.0.0.1:6379'));

    await expectIssueError(issue(caller, 'vault'), 'queue-unavailable');

    expect(onlyKey().status).toBe('failed');
    expect(resources(world)).toEqual(before);
    expect(world.revokesRunNow).toEqual([]);
  });
});
