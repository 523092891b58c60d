// RSA 2048 pairs for what signs in the sandbox (the OIDC issuer, GitHub Apps, the TLS CA). Making
// one costs 100-300 ms of CPU, twice or more per set of stand-ins; a test run makes a few once and
// hands them to every test file (test/support/rsa-pairs.global.ts), so each file takes them from
// here. Each pair is taken once per process, so two stand-ins of one process never share a key.
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { promisify } from 'node:util';

const made: string[] = [];

/** Pairs (PKCS#8 PEM private halves) made in advance, taken before new ones are generated. */
export function addPremadeRsaPairs(privateKeysPem: readonly string[]): void {
  made.push(...privateKeysPem);
}

export function rsaKeyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  const pem = made.shift();
  if (pem === undefined) return generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privateKey = createPrivateKey(pem);
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/** `count` new pairs, made in parallel off the main thread, as PKCS#8 PEM private halves. */
export async function makeRsaPairs(count: number): Promise<string[]> {
  const generate = promisify(generateKeyPair);
  const pairs = await Promise.all(
    Array.from({ length: count }, () =>
      generate('rsa', {
        modulusLength: 2048,
        publicKeyEncoding: { type: 'spki', format: 'pem' },
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      }),
    ),
  );
  return pairs.map((pair) => pair.privateKey);
}
