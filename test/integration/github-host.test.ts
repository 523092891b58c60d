// What only GitHub does: its secondary and primary rate limits, and known_hosts from `GET /meta`.
// The contract both host types keep is in host-adapter.test.ts.
import { generateKeyPairSync } from 'node:crypto';
import sshpk from 'sshpk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { docs, metaBody, secondaryLimitMessage } from '../../sandbox/github/responses.ts';
import { type GithubStandIn, startGithubStandIn } from '../../sandbox/github/stand-in.ts';
import { createHostState, type HostState } from '../../sandbox/shared/host-state.ts';
import type { HostConfig } from '../../src/config.ts';
import { nextPageOf } from '../../src/hosts/github.transport.ts';
import { generateEd25519 } from '../support/git-client.ts';
import { hostError, testAdapter } from '../support/host-adapters.ts';

const TOKEN = `ghp_${'a1B2'.repeat(9)}`;
const REPO = 'acme/models';

let standIn: GithubStandIn;
let state: HostState;
let hostKeys: string[];

beforeAll(async () => {
  state = createHostState('github');
  state.addRepository(REPO, '/nonexistent');
  hostKeys = [generateEd25519().publicKey];
  standIn = await startGithubStandIn({ state, tokens: [TOKEN], sshHostKeys: () => hostKeys });
});

afterAll(async () => {
  await standIn.close();
});

beforeEach(() => {
  standIn.faults.clear();
  standIn.setRateLimit(undefined);
});

function adapter(config: Partial<HostConfig> = {}) {
  return testAdapter({
    id: 'gh',
    type: 'github',
    apiUrl: standIn.url,
    sshUrl: 'ssh://git@127.0.0.1:2222',
    token: TOKEN,
    ...config,
  });
}

function ecdsaPublicKey(): string {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const [type, blob] = sshpk.parseKey(pem, 'pem').toString('ssh').split(' ');
  return `${type} ${blob}`;
}

const requests = () => standIn.faults.stats().total;

const secondaryLimit = (retryAfter: string) => ({
  status: 403,
  method: 'POST',
  headers: { 'retry-after': retryAfter },
  body: {
    message: secondaryLimitMessage('0000:000000:000000:000000:00000000'),
    documentation_url: docs.secondaryRateLimits,
  },
  count: 1,
});

describe('GitHub host adapter', () => {
  it('waits out a secondary rate limit that asks for a short pause, then succeeds', async () => {
    const { host } = adapter();
    standIn.faults.add(secondaryLimit('1'));
    const { publicKey } = generateEd25519();
    const started = Date.now();
    await host.addDeployKey({
      repository: REPO,
      title: 'deploykey-rotator:after limit',
      publicKey,
      expiresAt: new Date(Date.now() + 60_000),
      caller: 'token:test',
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(state.keysWithBlob(publicKey)).toHaveLength(1);
    expect(standIn.faults.stats().byStatus['403']).toBe(1);
  });

  it('fails fast as rate-limited when GitHub asks for a longer pause than we wait', async () => {
    const { host } = adapter();
    standIn.faults.add(secondaryLimit('30'));
    const before = requests();
    const started = Date.now();
    const error = await hostError(
      host.addDeployKey({
        repository: REPO,
        title: 'deploykey-rotator:limited',
        publicKey: generateEd25519().publicKey,
        expiresAt: new Date(Date.now() + 60_000),
        caller: 'token:test',
      }),
    );
    expect(error).toMatchObject({ kind: 'rate-limited', status: 403, retryAfterSeconds: 30 });
    expect(requests() - before).toBe(1);
    expect(Date.now() - started).toBeLessThan(2_500);
  });

  it('reports an exhausted primary rate limit with the wait until its reset', async () => {
    standIn.setRateLimit({ limit: 1, windowSeconds: 3600 });
    const { host } = adapter();
    await host.listDeployKeys(REPO);
    const error = await hostError(host.listDeployKeys(REPO));
    expect(error.kind).toBe('rate-limited');
    expect(error.retryAfterSeconds).toBeGreaterThan(3500);
    expect(error.retryAfterSeconds).toBeLessThanOrEqual(3601);
  });

  it('derives known_hosts lines from /meta once and serves them from cache after', async () => {
    const { host } = adapter();
    const before = requests();
    const [first, second] = await Promise.all([host.knownHosts(), host.knownHosts()]);
    expect(first).toEqual([`[127.0.0.1]:2222 ${hostKeys[0]}`]);
    expect(second).toEqual(first);
    expect(requests() - before).toBe(1);

    expect(await host.knownHosts()).toEqual(first);
    expect(requests() - before).toBe(1);

    const { host: onDefaultPort } = adapter({ sshUrl: 'ssh://git@GitHub.com' });
    expect(await onDefaultPort.knownHosts()).toEqual([`github.com ${hostKeys[0]}`]);
  });

  it('drops a /meta key whose fingerprint does not match, and does not cache a failed read', async () => {
    const ed25519 = hostKeys[0]!;
    const ecdsa = ecdsaPublicKey();
    const meta = metaBody([ed25519, ecdsa]);
    const tampered = {
      ...meta,
      ssh_key_fingerprints: { ...meta.ssh_key_fingerprints, SHA256_ED25519: 'AAAA' },
    };
    standIn.faults.add({ status: 200, pathPrefix: '/meta', body: tampered, count: 1 });
    const { host } = adapter();
    expect(await host.knownHosts()).toEqual([`[127.0.0.1]:2222 ${ecdsa}`]);

    const allWrong = { ...meta, ssh_key_fingerprints: { SHA256_ED25519: 'AAAA', SHA256_ECDSA: 'AAAA' } };
    standIn.faults.add({ status: 200, pathPrefix: '/meta', body: allWrong, count: 1 });
    const { host: fresh } = adapter();
    expect((await hostError(fresh.knownHosts())).kind).toBe('unavailable');
    expect(await fresh.knownHosts()).toEqual([`[127.0.0.1]:2222 ${ed25519}`]);
  });

  it('follows GitHub’s Link header to the next page, and stops where it names none', () => {
    const link =
      '<https://api.github.com/repositories/1/keys?per_page=100&page=3>; rel="next", ' +
      '<https://api.github.com/repositories/1/keys?per_page=100&page=5>; rel="last"';
    expect(nextPageOf(link)).toBe(3);
    expect(nextPageOf('<https://api.github.com/repositories/1/keys?page=1>; rel="first"')).toBeUndefined();
    expect(nextPageOf(undefined)).toBeUndefined();
  });
});
