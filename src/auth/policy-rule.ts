// One policy rule: whether it applies to a caller, and whether it permits a request.

import type { DenyReason, PolicyRequest, PolicySubject } from '../model/access.ts';
import type { Delivery } from '../model/schemas.ts';
import {
  describeGlob,
  type Glob,
  globMatches,
  isWildcardOnly,
  parseGlob,
  unusablePlaceholders,
} from './glob.ts';
import { type AccessPolicyOptions, API_TOKEN_ISSUER, type PolicyRule } from './policy-schema.ts';
import { claimValue, isPlainRepositoryPath, printable } from './policy-values.ts';

const DEFAULT_DELIVERIES: readonly Delivery[] = ['vault', 'wrapped'];

export interface CompiledRule {
  rule: PolicyRule;
  token: Glob | undefined;
  claims: [string, Glob][];
  providers: Glob[];
  repositories: Glob[];
  deliveries: readonly Delivery[];
  /** Set when the rule would match every caller; such a rule matches nobody instead. */
  inert: string | undefined;
}

export type Outcome = { permitted: true } | { permitted: false; reason: DenyReason; message: string };

function inertReason(rule: PolicyRule, claims: [string, Glob][]): string | undefined {
  if (rule.match.issuer !== undefined) return undefined;
  if (claims.length === 0) {
    return rule.match.token !== undefined
      ? `match.token needs issuer "${API_TOKEN_ISSUER}"; without an issuer or claims the rule would match every caller`
      : 'match names neither an issuer nor claims, so the rule would match every caller';
  }
  if (claims.every(([, glob]) => isWildcardOnly(glob))) {
    return 'match has no issuer and only wildcard claims, so the rule would match callers of every issuer';
  }
  return undefined;
}

export function compileRule(rule: PolicyRule): CompiledRule {
  const claims = Object.entries(rule.match.claims ?? {}).map(([name, pattern]): [string, Glob] => [
    name,
    parseGlob(pattern, { templates: false }),
  ]);
  return {
    rule,
    token: rule.match.token === undefined ? undefined : parseGlob(rule.match.token, { templates: false }),
    claims,
    providers: rule.allow.providers.map((p) => parseGlob(p, { templates: false })),
    repositories: rule.allow.repositories.map((p) => parseGlob(p, { templates: true })),
    deliveries: rule.allow.deliveries ?? DEFAULT_DELIVERIES,
    inert: inertReason(rule, claims),
  };
}

function list(globs: Glob[], claims: Record<string, unknown>): string {
  return `[${globs.map((g) => describeGlob(g, claims)).join(', ')}]`;
}

/** Why the rule does not apply to the caller, or undefined when it does. */
export function callerMismatch(compiled: CompiledRule, subject: PolicySubject): string | undefined {
  const { rule } = compiled;
  if (compiled.inert) return compiled.inert;
  if (rule.match.issuer !== undefined && rule.match.issuer !== subject.issuer) {
    return `issuer is ${printable(subject.issuer)}, the rule wants ${rule.match.issuer}`;
  }
  if (compiled.token) {
    if (subject.issuer !== API_TOKEN_ISSUER || subject.tokenName === undefined) {
      return 'the caller is not an API token holder';
    }
    if (!globMatches(compiled.token, subject.tokenName, { caseInsensitive: false })) {
      return `token name ${printable(subject.tokenName)} does not match ${rule.match.token}`;
    }
  }
  for (const [name, glob] of compiled.claims) {
    const value = claimValue(subject.claims, name);
    if (value === undefined) return `claim ${name} is missing (or not a single string, number or boolean)`;
    if (glob.problems.length > 0) return `claim pattern ${glob.source} ${glob.problems.join('; ')}`;
    if (!globMatches(glob, value, { caseInsensitive: false })) {
      return `claim ${name} is ${printable(value)}, which does not match ${glob.source}`;
    }
  }
  return undefined;
}

export function checkRequest(
  compiled: CompiledRule,
  subject: PolicySubject,
  request: PolicyRequest,
  activeKeys: number,
): Outcome {
  const { rule, providers, repositories, deliveries } = compiled;
  const suffix = ` (rule ${rule.name})`;
  if (!providers.some((g) => globMatches(g, request.provider, { caseInsensitive: true }))) {
    const message = `provider-not-allowed: ${printable(request.provider)} is not in ${list(providers, {})}`;
    return { permitted: false, reason: 'provider-not-allowed', message: message + suffix };
  }
  const repository = request.repository;
  const claims = subject.claims;
  if (!isPlainRepositoryPath(repository)) {
    const message = `repository-not-allowed: ${printable(repository)} is not a plain repository path`;
    return { permitted: false, reason: 'repository-not-allowed', message: message + suffix };
  }
  if (!repositories.some((g) => globMatches(g, repository, { caseInsensitive: true, claims }))) {
    const message = `repository-not-allowed: ${printable(repository)} is not in ${list(repositories, claims)}`;
    const missing = [...new Set(repositories.flatMap((g) => unusablePlaceholders(g, claims)))];
    const note = missing.length > 0 ? `; claims missing or unusable: ${missing.join(', ')}` : '';
    return { permitted: false, reason: 'repository-not-allowed', message: message + note + suffix };
  }
  const maxTtl = rule.allow.maxTtlSeconds;
  if (maxTtl !== undefined && !(request.ttlSeconds <= maxTtl)) {
    const message = `ttl-too-long: ${request.ttlSeconds}s exceeds the maximum of ${maxTtl}s`;
    return { permitted: false, reason: 'ttl-too-long', message: message + suffix };
  }
  if (!deliveries.includes(request.delivery)) {
    const message = `delivery-not-allowed: ${printable(request.delivery)} is not in [${deliveries.join(', ')}]`;
    return { permitted: false, reason: 'delivery-not-allowed', message: message + suffix };
  }
  const maxKeys = rule.allow.maxActiveKeys;
  if (maxKeys !== undefined && !(activeKeys < maxKeys)) {
    const message = `too-many-active-keys: ${activeKeys} keys are active, the limit is ${maxKeys}`;
    return { permitted: false, reason: 'too-many-active-keys', message: message + suffix };
  }
  return { permitted: true };
}

/** What an operator should fix in the rule; an empty list when nothing. */
export function validateRule(compiled: CompiledRule, index: number, options: AccessPolicyOptions): string[] {
  const { rule } = compiled;
  const at = `policy[${index}] (${rule.name})`;
  const problems: string[] = [];
  if (compiled.inert) problems.push(`${at}: ${compiled.inert}`);
  if (rule.match.token !== undefined && rule.match.issuer !== API_TOKEN_ISSUER) {
    problems.push(`${at}: match.token only applies to issuer "${API_TOKEN_ISSUER}"`);
  }
  const knownIssuers = options.issuers && [...options.issuers, API_TOKEN_ISSUER];
  if (knownIssuers && rule.match.issuer !== undefined && !knownIssuers.includes(rule.match.issuer)) {
    problems.push(`${at}: match.issuer "${rule.match.issuer}" is not a configured issuer`);
  }
  const report = (where: string, glob: Glob) => {
    for (const problem of glob.problems) problems.push(`${at}: ${where} "${glob.source}" ${problem}`);
  };
  if (compiled.token) report('match.token', compiled.token);
  for (const [name, glob] of compiled.claims) report(`match.claims.${name}`, glob);
  compiled.providers.forEach((glob, i) => {
    report(`allow.providers[${i}]`, glob);
    const hosts = options.providers;
    if (
      hosts &&
      glob.problems.length === 0 &&
      !hosts.some((h) => globMatches(glob, h, { caseInsensitive: true }))
    ) {
      problems.push(`${at}: allow.providers[${i}] "${glob.source}" matches no configured host`);
    }
  });
  compiled.repositories.forEach((glob, i) => {
    report(`allow.repositories[${i}]`, glob);
  });
  return problems;
}
