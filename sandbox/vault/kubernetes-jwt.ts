// Service account JWT checks of Vault's Kubernetes auth (path_login.go and hashicorp/cap's
// validator): signature against pem_keys, issuer, audience, time claims, and the account identity.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { compactVerify } from 'jose';
import { badRequest, isObject, PERMISSION_DENIED, stringList, vaultFailure } from './http.ts';

// The algorithms Kubernetes signs service account tokens with; EdDSA is not among them, and
// pem_keys only accepts RSA and ECDSA keys.
const ALLOWED_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'];
// go-jose's default clock skew leeway, and cap's leeway for a token that carries no `exp`.
const CLOCK_SKEW_SECONDS = 60;
const EXPIRY_LEEWAY_SECONDS = 150;

export interface ServiceAccount {
  name: string;
  namespace: string;
  uid: string;
  secretName: string;
}

export interface JwtExpectations {
  keys: KeyObject[];
  /** Checked only when set (config `issuer` with `disable_iss_validation: false`). */
  issuer?: string | undefined;
  /** The role's `audience`; the token's `aud` must contain it when set. */
  audience?: string;
  now: number;
}

export function parsePublicKeyPem(pem: string): KeyObject {
  try {
    const key = createPublicKey(pem);
    if (
      key.asymmetricKeyType === 'rsa' ||
      key.asymmetricKeyType === 'rsa-pss' ||
      key.asymmetricKeyType === 'ec'
    ) {
      return key;
    }
  } catch {}
  throw badRequest('data does not contain any valid RSA or ECDSA public keys');
}

// Projected tokens nest the identity under `kubernetes.io`; legacy secret-based tokens use flat claims.
function serviceAccountOf(claims: Record<string, unknown>): ServiceAccount {
  const projected = isObject(claims['kubernetes.io']) ? claims['kubernetes.io'] : undefined;
  const account = projected && isObject(projected.serviceaccount) ? projected.serviceaccount : undefined;
  const legacy = (field: string) => String(claims[`kubernetes.io/serviceaccount/${field}`] ?? '');
  return {
    name: account ? String(account.name ?? '') : legacy('service-account.name'),
    namespace: projected ? String(projected.namespace ?? '') : legacy('namespace'),
    uid: account ? String(account.uid ?? '') : legacy('service-account.uid'),
    secretName: legacy('secret.name'),
  };
}

function validateTimes(claims: Record<string, unknown>, nowMs: number): void {
  const now = nowMs / 1000;
  const iat = Number(claims.iat ?? 0);
  const nbfClaim = Number(claims.nbf ?? 0);
  let exp = Number(claims.exp ?? 0);
  if (iat === 0 && exp === 0 && nbfClaim === 0) return;
  if (exp === 0) exp = Math.max(iat, nbfClaim) + EXPIRY_LEEWAY_SECONDS;
  const nbf = nbfClaim || iat || exp - EXPIRY_LEEWAY_SECONDS;
  const forbidden = (message: string) => vaultFailure(403, message);
  if (now + CLOCK_SKEW_SECONDS < nbf) throw forbidden('invalid not before (nbf) claim: token not yet valid');
  if (now - CLOCK_SKEW_SECONDS > exp)
    throw forbidden('invalid expiration time (exp) claim: token is expired');
  if (iat && now + CLOCK_SKEW_SECONDS < iat)
    throw forbidden('invalid issued at (iat) claim: token issued in the future');
}

/** The service account a JWT vouches for, or the VaultFailure Vault answers a bad one with. */
export async function verifyServiceAccountJwt(
  jwt: string,
  expected: JwtExpectations,
): Promise<ServiceAccount> {
  let payload: Uint8Array | undefined;
  for (const key of expected.keys) {
    try {
      payload = (await compactVerify(jwt, key, { algorithms: ALLOWED_ALGORITHMS })).payload;
      break;
    } catch {}
  }
  // A signature that verifies against no key is a bare permission denied, not a claim error.
  if (!payload) throw vaultFailure(403, PERMISSION_DENIED);
  let claims: unknown;
  try {
    claims = JSON.parse(new TextDecoder().decode(payload));
  } catch {}
  if (!isObject(claims)) throw vaultFailure(403, PERMISSION_DENIED);

  if (expected.issuer && claims.iss !== expected.issuer)
    throw vaultFailure(403, 'invalid issuer (iss) claim');
  if (expected.audience && !stringList(claims.aud).includes(expected.audience)) {
    throw vaultFailure(
      403,
      'invalid audience (aud) claim: audience claim does not match any expected audience',
    );
  }
  validateTimes(claims, expected.now);
  return serviceAccountOf(claims);
}
