import { generateKeyPairSync } from 'node:crypto';
import sshpk from 'sshpk';

export interface DeployKeyPair {
  /** OpenSSH private key, as `ssh -i` reads it. Never leaves memory except towards Vault. */
  privateKey: string;
  /** `ssh-ed25519 AAAA… <comment>` */
  publicKey: string;
  /** `SHA256:…`, as `ssh-keygen -lf` prints it and the hosts show it. */
  fingerprint: string;
}

export function generateDeployKeyPair(comment: string): DeployKeyPair {
  const { privateKey } = generateKeyPairSync('ed25519', {
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const parsed = sshpk.parsePrivateKey(privateKey, 'pem');
  parsed.comment = comment;
  const publicKey = parsed.toPublic();
  return {
    privateKey: parsed.toString('ssh-private'),
    publicKey: publicKey.toString('ssh'),
    fingerprint: publicKey.fingerprint('sha256').toString(),
  };
}
