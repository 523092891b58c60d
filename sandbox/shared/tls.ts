// A certificate authority made at start, for the stand-ins' optional HTTPS listeners: clients that
// insist on https (gh for a GitHub Enterprise host, glab, the vault CLI) trust it through a CA file.
import { randomBytes } from 'node:crypto';
import forge from 'node-forge';
import { rsaKeyPair } from './rsa-keys.ts';

export interface TlsIdentity {
  keyPem: string;
  certPem: string;
}

export interface SandboxCa {
  /** PEM of the CA certificate, what a client adds to its trusted roots. */
  certPem: string;
  /** A server certificate for 127.0.0.1 and localhost, signed by this CA. */
  issueServerIdentity(): TlsIdentity;
}

const VALIDITY_MS = 30 * 24 * 3600 * 1000;
// forge ends PEM lines with CRLF; files and the --json line read better with plain newlines.
const pem = (text: string) => text.replaceAll('\r\n', '\n');

// forge signs in JavaScript but generating RSA keys there takes seconds; Node makes them natively.
function forgeRsaKeyPair() {
  const { privateKey } = rsaKeyPair();
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  return { pem, privateKey: forgeKey, publicKey: forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e) };
}

function newCertificate(publicKey: forge.pki.PublicKey, commonName: string) {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // A positive serial: the first byte's top bit clear.
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + VALIDITY_MS);
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  return cert;
}

export function createSandboxCa(): SandboxCa {
  const caKeys = forgeRsaKeyPair();
  const ca = newCertificate(caKeys.publicKey, 'deploykey-rotator sandbox CA');
  ca.setIssuer(ca.subject.attributes);
  ca.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  ca.sign(caKeys.privateKey, forge.md.sha256.create());

  return {
    certPem: pem(forge.pki.certificateToPem(ca)),
    issueServerIdentity() {
      const keys = forgeRsaKeyPair();
      const cert = newCertificate(keys.publicKey, '127.0.0.1');
      cert.setIssuer(ca.subject.attributes);
      cert.setExtensions([
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true },
        {
          name: 'subjectAltName',
          altNames: [
            { type: 7, ip: '127.0.0.1' },
            { type: 2, value: 'localhost' },
          ],
        },
        { name: 'authorityKeyIdentifier', keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
      ]);
      cert.sign(caKeys.privateKey, forge.md.sha256.create());
      return { keyPem: keys.pem, certPem: pem(forge.pki.certificateToPem(cert)) };
    },
  };
}
