import { createHash, generateKeyPairSync } from 'node:crypto';
import sshpk from 'sshpk';
import { describe, expect, it } from 'vitest';
import type { HostConfig } from '../../src/config.ts';
import { HostError } from '../../src/hosts/git-host.ts';
import {
  cachedKnownHosts,
  type GithubMeta,
  knownHostsFor,
  knownHostsName,
  sha256Fingerprint,
  verifiedMetaKeys,
} from '../../src/hosts/known-hosts.ts';
import { createLogger } from '../../src/log.ts';

const logger = createLogger('silent');

function publicKey(kind: 'ed25519' | 'rsa' | 'ec'): string {
  const { publicKey: key } =
    kind === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : kind === 'ec'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('ed25519');
  const parsed = sshpk.parseKey(key.export({ type: 'spki', format: 'pem' }).toString(), 'pem');
  const [type, blob] = parsed.toString('ssh').split(' ');
  return `${type} ${blob}`;
}

// What `ssh-keygen -lf` prints, minus its `SHA256:` prefix: an independent check of our hashing.
const keygenFingerprint = (key: string) =>
  sshpk
    .parseKey(key, 'ssh')
    .fingerprint('sha256')
    .toString()
    .replace(/^SHA256:/, '');

const ED25519 = publicKey('ed25519');
const RSA = publicKey('rsa');
const ECDSA = publicKey('ec');

function meta(keys: string[], overrides: Record<string, string> = {}): GithubMeta {
  const names: Record<string, string> = {
    'ssh-ed25519': 'SHA256_ED25519',
    'ssh-rsa': 'SHA256_RSA',
    'ecdsa-sha2-nistp256': 'SHA256_ECDSA',
  };
  const fingerprints = Object.fromEntries(
    keys.map((key) => [names[key.split(' ')[0]!]!, keygenFingerprint(key)]),
  );
  return { ssh_keys: keys, ssh_key_fingerprints: { ...fingerprints, ...overrides } };
}

const github = (overrides: Partial<HostConfig> = {}): HostConfig => ({
  id: 'gh',
  type: 'github',
  apiUrl: 'https://api.github.com',
  sshUrl: 'ssh://git@github.com',
  token: 'unused',
  ...overrides,
});

describe('known_hosts host names', () => {
  it('writes the bare host on port 22 and [host]:port elsewhere, as OpenSSH looks them up', () => {
    expect(knownHostsName('ssh://git@github.com')).toBe('github.com');
    expect(knownHostsName('ssh://git@GitHub.com:22')).toBe('github.com');
    expect(knownHostsName('ssh://git@127.0.0.1:2222')).toBe('[127.0.0.1]:2222');
    expect(knownHostsName('ssh://git@[::1]:2222/')).toBe('[::1]:2222');
    expect(knownHostsName('ssh://git@[::1]')).toBe('::1');
  });
});

describe('/meta key verification', () => {
  it('computes the fingerprint ssh-keygen shows', () => {
    for (const key of [ED25519, RSA, ECDSA]) {
      expect(sha256Fingerprint(key.split(' ')[1]!)).toBe(keygenFingerprint(key));
    }
    const blob = Buffer.from(ED25519.split(' ')[1]!, 'base64');
    expect(sha256Fingerprint(ED25519.split(' ')[1]!)).toBe(
      createHash('sha256').update(blob).digest('base64').replace(/=+$/, ''),
    );
  });

  it('keeps every key whose fingerprint matches and drops the one that does not', () => {
    expect(verifiedMetaKeys(meta([ED25519, RSA, ECDSA]), logger)).toEqual([ED25519, RSA, ECDSA]);
    const tampered = meta([ED25519, RSA, ECDSA], { SHA256_RSA: keygenFingerprint(publicKey('rsa')) });
    expect(verifiedMetaKeys(tampered, logger)).toEqual([ED25519, ECDSA]);
  });

  it('drops a key with no fingerprint listed, and one labelled with a type it is not', () => {
    const withoutEcdsa = meta([ED25519, ECDSA]);
    delete withoutEcdsa.ssh_key_fingerprints?.SHA256_ECDSA;
    expect(verifiedMetaKeys(withoutEcdsa, logger)).toEqual([ED25519]);

    const relabelled = `ssh-rsa ${ED25519.split(' ')[1]}`;
    const lying = {
      ssh_keys: [relabelled],
      ssh_key_fingerprints: { SHA256_RSA: keygenFingerprint(ED25519) },
    };
    expect(verifiedMetaKeys(lying, logger)).toEqual([]);
  });
});

describe('knownHostsFor', () => {
  it('returns configured lines as given without reading /meta', async () => {
    const lines = ['github.com ssh-ed25519 AAAA-configured'];
    let reads = 0;
    const result = await knownHostsFor(
      github({ knownHosts: lines }),
      async () => {
        reads += 1;
        return meta([ED25519]);
      },
      logger,
    );
    expect(result).toEqual(lines);
    expect(reads).toBe(0);
  });

  it('formats the verified /meta keys for the configured SSH endpoint', async () => {
    const config = github({ sshUrl: 'ssh://git@127.0.0.1:2222' });
    expect(await knownHostsFor(config, async () => meta([ED25519, RSA]), logger)).toEqual([
      `[127.0.0.1]:2222 ${ED25519}`,
      `[127.0.0.1]:2222 ${RSA}`,
    ]);
  });

  it('fails as unavailable when no /meta key verifies', async () => {
    const bad = meta([ED25519], { SHA256_ED25519: 'not-the-fingerprint' });
    const error = await knownHostsFor(github(), async () => bad, logger).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(HostError);
    expect(error).toMatchObject({ kind: 'unavailable', hostId: 'gh' });
  });

  it('asks for configured lines on a GitLab host, which publishes no host keys', async () => {
    const config = github({ id: 'gl', type: 'gitlab', apiUrl: 'https://gitlab.com/api/v4' });
    const error = await knownHostsFor(config, undefined, logger).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ kind: 'unavailable', hostId: 'gl' });
    expect((error as Error).message).toMatch(/knownHosts/);
  });
});

describe('cachedKnownHosts', () => {
  it('shares one in-flight load among concurrent callers and reuses it until the TTL passes', async () => {
    let clock = 0;
    let loads = 0;
    let release: (lines: string[]) => void = () => {};
    const get = cachedKnownHosts(
      () => {
        loads += 1;
        return new Promise<string[]>((resolve) => {
          release = resolve;
        });
      },
      { ttlMs: 1_000, now: () => clock },
    );
    const waiting = Promise.all([get(), get(), get()]);
    release([`line ${loads}`]);
    expect(await waiting).toEqual([['line 1'], ['line 1'], ['line 1']]);

    clock = 999;
    expect(await get()).toEqual(['line 1']);
    expect(loads).toBe(1);

    clock = 1_000;
    const reloaded = get();
    release([`line ${loads}`]);
    expect(await reloaded).toEqual(['line 2']);
  });

  it('does not remember a failed load', async () => {
    let loads = 0;
    const get = cachedKnownHosts(async () => {
      loads += 1;
      if (loads === 1) throw new Error('host down');
      return ['github.com ssh-ed25519 AAAA'];
    });
    await expect(get()).rejects.toThrow('host down');
    expect(await get()).toEqual(['github.com ssh-ed25519 AAAA']);
    expect(loads).toBe(2);
  });

  it('hands each caller its own copy of the lines', async () => {
    const get = cachedKnownHosts(async () => ['github.com ssh-ed25519 AAAA']);
    const first = await get();
    first.push('tampered');
    expect(await get()).toEqual(['github.com ssh-ed25519 AAAA']);
  });
});
