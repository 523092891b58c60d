// known_hosts lines for a host's SSH endpoint, so clients verify the server they clone from.
// Configured lines win. GitHub-type hosts otherwise publish their keys at `GET /meta`; a host type
// without such an endpoint (GitLab) needs its keys configured.
import { createHash } from 'node:crypto';
import type { HostConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import { HostError } from './git-host.ts';

/** The part of GitHub's `GET /meta` answer that concerns SSH. */
export interface GithubMeta {
  ssh_keys?: string[];
  ssh_key_fingerprints?: Record<string, string>;
}

const KNOWN_HOSTS_TTL_MS = 60 * 60 * 1000;

// `/meta` names fingerprints by algorithm family, not by the key's wire type.
const FINGERPRINT_NAMES: Record<string, string> = {
  'ssh-ed25519': 'SHA256_ED25519',
  'ssh-rsa': 'SHA256_RSA',
  'ssh-dss': 'SHA256_DSA',
  'ecdsa-sha2-nistp256': 'SHA256_ECDSA',
  'ecdsa-sha2-nistp384': 'SHA256_ECDSA',
  'ecdsa-sha2-nistp521': 'SHA256_ECDSA',
};

/** The host name as OpenSSH writes it in known_hosts: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(sshUrl: string): string {
  const url = new URL(sshUrl);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return url.port === '' || url.port === '22' ? host : `[${host}]:${url.port}`;
}

/** Unpadded base64 SHA-256 of the key blob, as `/meta` lists it (without `ssh-keygen`'s `SHA256:`). */
export function sha256Fingerprint(keyBlobBase64: string): string {
  return createHash('sha256')
    .update(Buffer.from(keyBlobBase64, 'base64'))
    .digest('base64')
    .replace(/=+$/, '');
}

// The blob starts with its own type as an SSH string; a line whose label disagrees is not that key.
function blobType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  return length > 0 && 4 + length <= blob.length
    ? blob.subarray(4, 4 + length).toString('latin1')
    : undefined;
}

/** The `<type> <base64>` keys of `/meta` whose fingerprint matches; the others are dropped with a warning. */
export function verifiedMetaKeys(meta: GithubMeta, logger: Logger): string[] {
  const fingerprints = meta.ssh_key_fingerprints ?? {};
  const verified: string[] = [];
  for (const line of meta.ssh_keys ?? []) {
    const [type = '', blob = ''] = line.trim().split(/\s+/);
    const name = FINGERPRINT_NAMES[type];
    const expected =
      name === undefined ? undefined : fingerprints[name]?.replace(/^SHA256:/, '').replace(/=+$/, '');
    const matches =
      expected !== undefined &&
      blobType(Buffer.from(blob, 'base64')) === type &&
      sha256Fingerprint(blob) === expected;
    if (matches) verified.push(`${type} ${blob}`);
    else
      logger.warn(
        { keyType: type, fingerprintName: name },
        'dropping a host key whose fingerprint does not match /meta',
      );
  }
  return verified;
}

function formatKnownHostsLines(sshUrl: string, keys: string[]): string[] {
  const name = knownHostsName(sshUrl);
  return keys.map((key) => `${name} ${key}`);
}

/**
 * Resolves the known_hosts lines of one host, uncached: configured lines as given, else the
 * verified keys of `/meta` from `fetchMeta`, which a host type without that endpoint has none of.
 */
export async function knownHostsFor(
  config: HostConfig,
  fetchMeta: (() => Promise<GithubMeta>) | undefined,
  logger: Logger,
): Promise<string[]> {
  if (config.knownHosts && config.knownHosts.length > 0) return [...config.knownHosts];
  if (fetchMeta === undefined) {
    throw new HostError(
      config.id,
      'unavailable',
      `host "${config.id}" has no knownHosts configured; ${config.type} publishes no SSH host keys through its API, so set hosts[].knownHosts`,
    );
  }
  const keys = verifiedMetaKeys(await fetchMeta(), logger);
  if (keys.length === 0) {
    throw new HostError(
      config.id,
      'unavailable',
      `no SSH host key of "${config.id}" matches its /meta fingerprints`,
    );
  }
  return formatKnownHostsLines(config.sshUrl, keys);
}

/**
 * Caches what `load` resolves for `ttlMs`; concurrent callers share one in-flight load, and a
 * failed load is not remembered, so the next caller tries again.
 */
export function cachedKnownHosts(
  load: () => Promise<string[]>,
  opts: { ttlMs?: number; now?: () => number } = {},
): () => Promise<string[]> {
  const ttlMs = opts.ttlMs ?? KNOWN_HOSTS_TTL_MS;
  const now = opts.now ?? Date.now;
  let cached: { lines: string[]; loadedAt: number } | undefined;
  let inFlight: Promise<string[]> | undefined;
  return async () => {
    if (cached && now() - cached.loadedAt < ttlMs) return [...cached.lines];
    inFlight ??= load()
      .then((lines) => {
        cached = { lines, loadedAt: now() };
        return lines;
      })
      .finally(() => {
        inFlight = undefined;
      });
    return [...(await inFlight)];
  };
}
