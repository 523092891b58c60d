// `auth/jwt/config` of the JWT auth method: exactly one key source (PEM keys, a JWKS URL or an OIDC
// discovery URL), checked when written as vault-plugin-auth-jwt checks it, and Vault's read-back.
import { createPublicKey } from 'node:crypto';
import type { JSONWebKeySet } from 'jose';
import { badRequest, isObject, stringList, type VaultRequest } from './http.ts';
import { DEFAULT_ALGORITHMS, type KeySource } from './jwt-validate.ts';

export const text = (value: unknown) => (typeof value === 'string' ? value : '');

export interface JwtConfig {
  data: Record<string, unknown>;
  source: KeySource;
  boundIssuer: string;
  algorithms: string[];
  defaultRole: string;
}

async function fetchJson(url: string): Promise<Record<string, unknown>> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`${response.status} from ${url}`);
  const body: unknown = await response.json();
  if (!isObject(body)) throw new Error(`no JSON object at ${url}`);
  return body;
}

/** A JWKS fetched once and again on demand, as go-oidc's remote key set does. */
function remoteKeys(jwksUrl: string, first: JSONWebKeySet): KeySource {
  let cached = first;
  return {
    kind: 'remote',
    async jwks(refresh) {
      if (refresh) cached = (await fetchJson(jwksUrl)) as unknown as JSONWebKeySet;
      return cached;
    },
  };
}

async function keySource(body: Record<string, unknown>): Promise<KeySource> {
  const discoveryUrl = text(body.oidc_discovery_url);
  const jwksUrl = text(body.jwks_url);
  const pems = stringList(body.jwt_validation_pubkeys);
  const methods = [discoveryUrl !== '', jwksUrl !== '', pems.length > 0].filter(Boolean).length;
  if (methods !== 1) {
    throw badRequest(
      "exactly one of 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs' or 'oidc_discovery_url' must be set",
    );
  }
  if (pems.length > 0) {
    try {
      return { kind: 'static', keys: pems.map((pem) => createPublicKey(pem)) };
    } catch {
      throw badRequest('error parsing public key: data does not contain any valid public keys');
    }
  }
  if (jwksUrl !== '') {
    try {
      const jwks = await fetchJson(jwksUrl);
      if (!Array.isArray(jwks.keys)) throw new Error('no keys');
      return remoteKeys(jwksUrl, jwks as unknown as JSONWebKeySet);
    } catch {
      throw badRequest(`error checking jwks URL ${jwksUrl}`);
    }
  }
  try {
    const document = await fetchJson(`${discoveryUrl.replace(/\/$/, '')}/.well-known/openid-configuration`);
    // go-oidc refuses a provider whose document names another issuer.
    if (document.issuer !== discoveryUrl || typeof document.jwks_uri !== 'string')
      throw new Error('mismatch');
    return remoteKeys(document.jwks_uri, (await fetchJson(document.jwks_uri)) as unknown as JSONWebKeySet);
  } catch {
    throw badRequest('error checking oidc discovery URL');
  }
}

/** The config `auth/jwt/config` stores, its key source checked and fetched as the plugin does. */
export async function writeConfig(request: VaultRequest): Promise<JwtConfig> {
  const body = request.data;
  const source = await keySource(body);
  const algorithms = stringList(body.jwt_supported_algs);
  const unsupported = algorithms.find((algorithm) => !DEFAULT_ALGORITHMS.includes(algorithm));
  if (unsupported)
    throw badRequest(`invalid jwt_supported_algs: unsupported signing algorithm "${unsupported}"`);
  return {
    source,
    algorithms,
    boundIssuer: text(body.bound_issuer),
    defaultRole: text(body.default_role).toLowerCase(),
    data: {
      oidc_discovery_url: text(body.oidc_discovery_url),
      oidc_discovery_ca_pem: text(body.oidc_discovery_ca_pem),
      oidc_client_id: text(body.oidc_client_id),
      oidc_response_mode: text(body.oidc_response_mode),
      oidc_response_types: stringList(body.oidc_response_types),
      default_role: text(body.default_role),
      jwt_validation_pubkeys: stringList(body.jwt_validation_pubkeys),
      jwt_supported_algs: algorithms,
      jwks_url: text(body.jwks_url),
      jwks_pairs: [],
      jwks_ca_pem: text(body.jwks_ca_pem),
      bound_issuer: text(body.bound_issuer),
      provider_config: {},
      namespace_in_state: body.namespace_in_state !== false,
      unsupported_critical_cert_extensions: [],
    },
  };
}
