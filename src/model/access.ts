// What the access policy is asked and what it answers. Plain types, not schemas: the service builds
// them itself from verified callers and validated requests, so nothing outside ever sends one.
import type { Delivery } from './schemas.ts';

/** What the access policy matches on: the issuer (an OIDC issuer id, or `api-token`) and its claims. */
export interface PolicySubject {
  issuer: string;
  tokenName?: string;
  claims: Record<string, unknown>;
}

/** The key a caller asks for, once its TTL and delivery are resolved. */
export interface PolicyRequest {
  provider: string;
  repository: string;
  ttlSeconds: number;
  delivery: Delivery;
}

export type DenyReason =
  | 'no-matching-rule'
  | 'provider-not-allowed'
  | 'repository-not-allowed'
  | 'ttl-too-long'
  | 'delivery-not-allowed'
  | 'too-many-active-keys';

export type Permission = { allowed: true; rule: string; maxActiveKeys?: number };
export type Denial<Reason extends string = DenyReason> = {
  allowed: false;
  reason: Reason;
  rule?: string;
  message: string;
};

/** The access policy's answer. */
export type Decision = Permission | Denial;

/**
 * The answer the key service gets: the policy's decision and, when allowed, whom the key will belong
 * to (src/keys/ownership.ts). The service records a refusal's reason without reading it.
 */
export type AccessDecision = (Permission & { owner: string }) | Denial<string>;
