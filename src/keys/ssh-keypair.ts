import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';

export interface DeployKeyPair {
  /** OpenSSH private key, as `ssh -i` reads it. Never leaves memory except towards Vault. */
  privateKey: string;
  /** `ssh-ed25519 AAAA… <comment>` */
  publicKey: string;
  /** `SHA256:…`, as `ssh-keygen -lf` prints it and the hosts show it. */
  fingerprint: string;
}

const KEY_TYPE = 'ssh-ed25519';

/** An SSH wire-format string: a 32-bit big-endian length, then the bytes. */
function sshString(value: Buffer | string): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value) : value;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

function uint32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}

function wrap(base64: string, width: number): string {
  return base64.match(new RegExp(`.{1,${width}}`, 'g'))?.join('\n') ?? '';
}

/**
 * The OpenSSH encodings (PROTOCOL.key) written directly from node:crypto's raw Ed25519 key:
 * building them through a general key-parsing library cost ~35 ms of CPU per key, this costs
 * well under one.
 */
export function generateDeployKeyPair(comment: string): DeployKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const publicBlob = Buffer.concat([sshString(KEY_TYPE), sshString(raw)]);

  const check = randomBytes(4).readUInt32BE();
  const unpadded = Buffer.concat([
    uint32(check),
    uint32(check),
    sshString(KEY_TYPE),
    sshString(raw),
    sshString(Buffer.concat([seed, raw])),
    sshString(comment),
  ]);
  // Padded with 1, 2, 3, … to the cipher block size (8 for "none").
  const padding = Buffer.from(Array.from({ length: (8 - (unpadded.length % 8)) % 8 }, (_, i) => i + 1));
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    uint32(1),
    sshString(publicBlob),
    sshString(Buffer.concat([unpadded, padding])),
  ]);

  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${wrap(body.toString('base64'), 70)}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `${KEY_TYPE} ${publicBlob.toString('base64')} ${comment}`,
    fingerprint: `SHA256:${createHash('sha256').update(publicBlob).digest('base64').replace(/=+$/, '')}`,
  };
}
