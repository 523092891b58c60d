// Ed25519 signatures over the audit chain's head, so the head can be anchored outside Postgres.
import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { canonicalJson } from './canonical-json.ts';

/** A signed statement that the audit chain had `seq` events and its last hash was `head` at `at`. */
export interface AuditCheckpoint {
  seq: string;
  head: string;
  at: string;
  /** Base64 Ed25519 signature over `checkpointMessage({ seq, head, at })`. */
  signature: string;
  /** The signer's public key, SPKI PEM; informative only: trust comes from the configured key. */
  publicKey: string;
}

export type CheckpointClaim = Pick<AuditCheckpoint, 'seq' | 'head' | 'at'>;

/** The exact bytes that are signed: canonical JSON of `{ at, head, seq }` (seq as a decimal string). */
export function checkpointMessage(claim: CheckpointClaim): Buffer {
  return Buffer.from(canonicalJson({ seq: claim.seq, head: claim.head, at: claim.at }), 'utf8');
}

/** Reads an Ed25519 private key given as PKCS#8 PEM or as base64 of PKCS#8 DER. */
export function parseSigningKey(text: string): KeyObject {
  const trimmed = text.trim();
  let key: KeyObject;
  try {
    key = trimmed.startsWith('-----BEGIN')
      ? createPrivateKey({ key: trimmed, format: 'pem' })
      : createPrivateKey({ key: Buffer.from(trimmed, 'base64'), format: 'der', type: 'pkcs8' });
  } catch {
    throw new Error('is not a private key (expected PKCS#8 PEM or base64 PKCS#8 DER)');
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new Error(`is a ${key.asymmetricKeyType ?? 'non-asymmetric'} key; an Ed25519 key is required`);
  }
  return key;
}

export function publicKeyPem(privateKey: KeyObject): string {
  return createPublicKey(privateKey).export({ format: 'pem', type: 'spki' }).toString();
}

export function signCheckpoint(privateKey: KeyObject, claim: CheckpointClaim): AuditCheckpoint {
  return {
    seq: claim.seq,
    head: claim.head,
    at: claim.at,
    signature: sign(null, checkpointMessage(claim), privateKey).toString('base64'),
    publicKey: publicKeyPem(privateKey),
  };
}

/** Whether `checkpoint` was signed by the holder of `publicKey` (a KeyObject or SPKI PEM). */
export function checkpointSignatureValid(
  checkpoint: AuditCheckpoint,
  publicKey: KeyObject | string,
): boolean {
  try {
    const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
    return verify(null, checkpointMessage(checkpoint), key, Buffer.from(checkpoint.signature, 'base64'));
  } catch {
    return false;
  }
}
