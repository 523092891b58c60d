// The policy as written in the config file, and the shapes the policy is asked about.
import Type, { type Static } from 'typebox';
import type { Decision, PolicyRequest, PolicySubject } from '../model/access.ts';
import { DeliverySchema } from '../model/schemas.ts';

export const API_TOKEN_ISSUER = 'api-token';

export const PolicyRuleSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100, description: 'Shown in decisions and audit rows' }),
    match: Type.Object(
      {
        issuer: Type.Optional(
          Type.String({
            minLength: 1,
            description: `An OIDC issuer id from config, or "${API_TOKEN_ISSUER}"`,
          }),
        ),
        token: Type.Optional(
          Type.String({
            minLength: 1,
            description: `API token name glob (issuer "${API_TOKEN_ISSUER}" only)`,
          }),
        ),
        claims: Type.Optional(
          Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }), {
            description: 'Claim (dot path) → glob; every one must match',
          }),
        ),
      },
      { additionalProperties: false },
    ),
    allow: Type.Object(
      {
        providers: Type.Array(Type.String({ minLength: 1 }), {
          minItems: 1,
          description: 'Host ids or globs such as "*"',
        }),
        repositories: Type.Array(Type.String({ minLength: 1 }), {
          minItems: 1,
          description: `Globs; "\${claim}" is replaced by the caller's claim, e.g. "\${repository}"`,
        }),
        maxTtlSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
        deliveries: Type.Optional(
          Type.Array(DeliverySchema, { minItems: 1, description: 'Default: vault and wrapped' }),
        ),
        maxActiveKeys: Type.Optional(
          Type.Integer({ minimum: 1, description: 'Live keys this caller may hold at once' }),
        ),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export const PolicySchema = Type.Array(PolicyRuleSchema, { default: [] });

export type PolicyRule = Static<typeof PolicyRuleSchema>;
export type PolicyRules = Static<typeof PolicySchema>;

export interface Explanation {
  decision: Decision;
  rules: { name: string; callerMatched: boolean; why: string }[];
}

export interface AccessPolicyOptions {
  /** Issuer ids from config; when given, validate() flags rules naming any other. */
  issuers?: readonly string[];
  /** Host ids from config; when given, validate() flags provider patterns matching none. */
  providers?: readonly string[];
}

/** A rule that applies to a caller, and the values of the claims its `match` binds for that caller. */
export interface Binding {
  rule: string;
  claims: Record<string, string>;
}

export interface AccessPolicy {
  decide(subject: PolicySubject, request: PolicyRequest, activeKeys: number): Decision;
  /** Every rule that applies to the caller (whatever it would permit), with the claims it binds. */
  bindings(subject: PolicySubject): Binding[];
  explain(subject: PolicySubject, request: PolicyRequest, activeKeys: number): Explanation;
  /**
   * The largest `maxActiveKeys` of the rules that apply to this caller; undefined when none sets
   * one. Counting the caller's live keys up to it decides every limit as a full count would.
   */
  liveKeyCap(subject: PolicySubject): number | undefined;
  validate(): string[];
}
