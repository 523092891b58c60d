// The API server only speaks HTTPS, and kubectl sends a bearer token only over TLS: the stand-in
// serves a self-signed certificate that its kubeconfig names as the cluster's CA.
import { generateKeyPairSync } from 'node:crypto';
import sshpk from 'sshpk';

/** The name the certificate is issued to; kubeconfig's `tls-server-name` asks for it. */
export const TLS_SERVER_NAME = 'localhost';

export interface ServingCertificate {
  keyPem: string;
  certPem: string;
}

export function createServingCertificate(): ServingCertificate {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const names = [TLS_SERVER_NAME, 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'];
  const certificate = sshpk.createSelfSignedCertificate(
    names.map((name) => sshpk.identityForHost(name)),
    sshpk.parsePrivateKey(keyPem, 'pem'),
    { lifetime: 7 * 24 * 3600, purposes: ['ca', 'serverAuth'] },
  );
  return { keyPem, certPem: certificate.toBuffer('pem').toString() };
}
