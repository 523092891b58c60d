// Who may ask for which key. Default deny: a request is allowed only by the first rule that both
// applies to the caller and permits the request; anything unreadable (a missing claim, a bad
// pattern, an ambiguous claim path) makes the part that depends on it match nothing.

import type { Decision, PolicyRequest, PolicySubject } from '../model/access.ts';
import {
  type CompiledRule,
  callerMismatch,
  checkRequest,
  compileRule,
  type Outcome,
  validateRule,
} from './policy-rule.ts';
import type { AccessPolicy, AccessPolicyOptions, PolicyRules } from './policy-schema.ts';
import { claimValue, printable } from './policy-values.ts';

export {
  type AccessPolicy,
  type AccessPolicyOptions,
  API_TOKEN_ISSUER,
  type Binding,
  type Explanation,
  type PolicyRule,
  PolicyRuleSchema,
  type PolicyRules,
  PolicySchema,
} from './policy-schema.ts';

interface RuleResult {
  compiled: CompiledRule;
  mismatch: string | undefined;
  outcome: Outcome | undefined;
}

/** The decision and the index of the rule that made it (-1 when no rule applies). */
function decisionOf(results: RuleResult[], subject: PolicySubject): { decision: Decision; by: number } {
  const permitting = results.findIndex((r) => r.outcome?.permitted);
  if (permitting >= 0) {
    const { name, allow } = results[permitting]!.compiled.rule;
    const decision: Decision =
      allow.maxActiveKeys === undefined
        ? { allowed: true, rule: name }
        : { allowed: true, rule: name, maxActiveKeys: allow.maxActiveKeys };
    return { decision, by: permitting };
  }
  const first = results.findIndex((r) => r.outcome !== undefined);
  const outcome = results[first]?.outcome;
  if (outcome && !outcome.permitted) {
    const { reason, message } = outcome;
    return {
      decision: { allowed: false, reason, rule: results[first]!.compiled.rule.name, message },
      by: first,
    };
  }
  const message = `no-matching-rule: no policy rule applies to this caller (issuer ${printable(subject.issuer)})`;
  return { decision: { allowed: false, reason: 'no-matching-rule', message }, by: -1 };
}

export function createAccessPolicy(rules: PolicyRules, options: AccessPolicyOptions = {}): AccessPolicy {
  const compiled = rules.map(compileRule);

  const evaluate = (subject: PolicySubject, request: PolicyRequest, activeKeys: number): RuleResult[] =>
    compiled.map((rule) => {
      const mismatch = callerMismatch(rule, subject);
      const outcome = mismatch === undefined ? checkRequest(rule, subject, request, activeKeys) : undefined;
      return { compiled: rule, mismatch, outcome };
    });

  return {
    decide(subject, request, activeKeys) {
      return decisionOf(evaluate(subject, request, activeKeys), subject).decision;
    },

    explain(subject, request, activeKeys) {
      const results = evaluate(subject, request, activeKeys);
      const { decision, by } = decisionOf(results, subject);
      const rulesOut = results.map(({ compiled: c, mismatch, outcome }, index) => {
        const name = c.rule.name;
        if (mismatch !== undefined) return { name, callerMatched: false, why: `does not apply: ${mismatch}` };
        const verdict = outcome?.permitted ? 'permits this request' : `denies: ${outcome?.message}`;
        const note =
          index === by
            ? ' (this rule decides)'
            : decision.allowed && index > by
              ? ' (not consulted: an earlier rule allowed the request)'
              : '';
        return { name, callerMatched: true, why: `applies and ${verdict}${note}` };
      });
      return { decision, rules: rulesOut };
    },

    liveKeyCap(subject) {
      let cap: number | undefined;
      for (const rule of compiled) {
        const max = rule.rule.allow.maxActiveKeys;
        if (max === undefined || callerMismatch(rule, subject) !== undefined) continue;
        cap = Math.max(cap ?? 0, max);
      }
      return cap;
    },

    bindings(subject) {
      return compiled
        .filter((rule) => callerMismatch(rule, subject) === undefined)
        .map((rule) => ({
          rule: rule.rule.name,
          // callerMismatch guarantees every matched claim has a value.
          claims: Object.fromEntries(
            rule.claims.map(([name]) => [name, claimValue(subject.claims, name) as string]),
          ),
        }));
    },

    validate() {
      const problems: string[] = [];
      const seen = new Set<string>();
      compiled.forEach((rule, index) => {
        if (seen.has(rule.rule.name))
          problems.push(`policy[${index}]: rule name "${rule.rule.name}" is used twice`);
        seen.add(rule.rule.name);
        problems.push(...validateRule(rule, index, options));
      });
      return problems;
    },
  };
}
