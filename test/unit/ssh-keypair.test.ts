// The key pair must be exactly what OpenSSH itself reads and prints.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sshpk from 'sshpk';
import { afterAll, describe, expect, it } from 'vitest';
import { generateDeployKeyPair } from '../../src/keys/ssh-keypair.ts';

const dir = mkdtempSync(join(tmpdir(), 'dkr-keypair-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('generateDeployKeyPair', () => {
  it('writes a private key ssh-keygen reads, with the public key and fingerprint it derives', () => {
    for (const comment of ['deploykey-rotator:1 job=a', 'x', 'a-comment-long-enough-to-change-padding-123']) {
      const pair = generateDeployKeyPair(comment);
      const path = join(dir, 'id_ed25519');
      writeFileSync(path, pair.privateKey, { mode: 0o600 });
      expect(execFileSync('ssh-keygen', ['-y', '-f', path]).toString().trim()).toBe(pair.publicKey);
      const fingerprint = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', path]).toString();
      expect(fingerprint.split(' ')[1]).toBe(pair.fingerprint);
      expect(fingerprint).toContain(comment);
    }
  });

  it('agrees with an independent OpenSSH parser and signs verifiably', () => {
    const pair = generateDeployKeyPair('deploykey-rotator:check');
    const parsed = sshpk.parsePrivateKey(pair.privateKey, 'ssh');
    expect(parsed.toPublic().toString('ssh')).toBe(pair.publicKey);
    expect(parsed.toPublic().fingerprint('sha256').toString()).toBe(pair.fingerprint);
    const signer = parsed.createSign('sha512');
    signer.update('payload');
    const verifier = sshpk.parseKey(pair.publicKey, 'ssh').createVerify('sha512');
    verifier.update('payload');
    expect(verifier.verify(signer.sign())).toBe(true);
  });

  it('makes a different key every time', () => {
    const keys = new Set(Array.from({ length: 20 }, () => generateDeployKeyPair('c').publicKey));
    expect(keys.size).toBe(20);
  });
});
