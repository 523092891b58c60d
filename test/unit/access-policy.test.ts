import Value from 'typebox/value';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { createAccessPolicy, type PolicyRule, PolicySchema } from '../../src/auth/access-policy.ts';
import type { PolicyRequest, PolicySubject } from '../../src/model/access.ts';

const request = (overrides: Partial<PolicyRequest> = {}): PolicyRequest => ({
  provider: 'github',
  repository: 'acme/models',
  ttlSeconds: 600,
  delivery: 'vault',
  ...overrides,
});

const actions = (claims: Record<string, unknown>): PolicySubject => ({ issuer: 'github-actions', claims });
const k8s = (namespace: string, serviceAccount: string): PolicySubject => ({
  issuer: 'k8s',
  claims: {
    sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
    'kubernetes.io': { namespace, serviceaccount: { name: serviceAccount, uid: 'a709ef71' } },
  },
});
const tokenHolder = (tokenName: string): PolicySubject => ({ issuer: 'api-token', tokenName, claims: {} });

const ownRepo: PolicyRule = {
  name: 'actions-own-repo',
  match: { issuer: 'github-actions' },
  allow: { providers: ['github'], repositories: [`\${repository}`] },
};

describe('GitHub Actions: a workflow gets keys for its own repository', () => {
  const policy = createAccessPolicy([ownRepo]);

  it('allows the repository named in the token and nothing else', () => {
    const caller = actions({ repository: 'acme/a' });
    expect(policy.decide(caller, request({ repository: 'acme/a' }), 0)).toEqual({
      allowed: true,
      rule: 'actions-own-repo',
    });
    expect(policy.decide(caller, request({ repository: 'acme/b' }), 0)).toEqual({
      allowed: false,
      reason: 'repository-not-allowed',
      rule: 'actions-own-repo',
      message: 'repository-not-allowed: acme/b is not in [acme/a] (rule actions-own-repo)',
    });
  });

  it('denies when the token carries no repository claim (never an empty or wildcard match)', () => {
    for (const repository of ['acme/a', '', '*']) {
      const decision = policy.decide(actions({}), request({ repository }), 0);
      expect(decision).toMatchObject({ allowed: false, reason: 'repository-not-allowed' });
    }
    const decision = policy.decide(actions({}), request({ repository: 'acme/a' }), 0);
    expect(decision.allowed === false && decision.message).toContain(
      'claims missing or unusable: repository',
    );
  });

  it('treats wildcard characters inside a claim value literally', () => {
    for (const repository of ['acme/*', 'acme/**', 'acme/?', 'acme/[a-z]*']) {
      const caller = actions({ repository });
      for (const asked of ['acme/secret', 'acme/x', 'acme/a/b']) {
        expect(policy.decide(caller, request({ repository: asked }), 0).allowed).toBe(false);
      }
    }
  });

  it('refuses claim values that climb out of a path or carry control characters', () => {
    const climbing = actions({ repository: 'acme/a/../b' });
    expect(policy.decide(climbing, request({ repository: 'acme/b' }), 0).allowed).toBe(false);
    expect(policy.decide(climbing, request({ repository: 'acme/a/../b' }), 0).allowed).toBe(false);
    const refused = policy.decide(climbing, request({ repository: 'acme/b' }), 0);
    expect(refused.allowed === false && refused.message).toContain('claims missing or unusable: repository');
    const control = actions({ repository: 'acme/a\nb' });
    expect(policy.decide(control, request({ repository: 'acme/a\nb' }), 0).allowed).toBe(false);
  });

  it('requests with "." or ".." segments never match, even under a wide pattern', () => {
    const wide = createAccessPolicy([{ ...ownRepo, allow: { providers: ['*'], repositories: ['acme/**'] } }]);
    const caller = actions({ repository: 'acme/a' });
    expect(wide.decide(caller, request({ repository: 'acme/x/../../other/secret' }), 0)).toMatchObject({
      allowed: false,
      reason: 'repository-not-allowed',
    });
    expect(wide.decide(caller, request({ repository: 'acme/x/y' }), 0).allowed).toBe(true);
  });
});

describe('claim matching', () => {
  const mainOnly = createAccessPolicy([
    {
      name: 'protected-main',
      match: { issuer: 'github-actions', claims: { ref: 'refs/heads/main', ref_protected: 'true' } },
      allow: { providers: ['github'], repositories: ['acme/*'] },
    },
  ]);

  it('requires every claim to match; booleans compare by their string form', () => {
    expect(
      mainOnly.decide(actions({ ref: 'refs/heads/main', ref_protected: 'true' }), request(), 0).allowed,
    ).toBe(true);
    expect(
      mainOnly.decide(actions({ ref: 'refs/heads/main', ref_protected: true }), request(), 0).allowed,
    ).toBe(true);
    for (const claims of [
      { ref: 'refs/heads/main', ref_protected: false },
      { ref: 'refs/heads/dev', ref_protected: 'true' },
      { ref: 'refs/heads/Main', ref_protected: 'true' },
      { ref: 'refs/heads/main' },
    ]) {
      expect(mainOnly.decide(actions(claims), request(), 0)).toMatchObject({
        allowed: false,
        reason: 'no-matching-rule',
      });
    }
  });

  it('matches a Kubernetes service account by its nested claims, one segment per *', () => {
    const policy = createAccessPolicy([
      {
        name: 'training-jobs',
        match: {
          issuer: 'k8s',
          claims: { 'kubernetes.io.namespace': 'training', 'kubernetes.io.serviceaccount.name': 'trainer' },
        },
        allow: { providers: ['gitlab'], repositories: ['acme/*'] },
      },
    ]);
    const trainer = k8s('training', 'trainer');
    const asks = (repository: string) => request({ provider: 'gitlab', repository });
    expect(policy.decide(trainer, asks('acme/models'), 0)).toEqual({ allowed: true, rule: 'training-jobs' });
    expect(policy.decide(trainer, asks('acme/sub/x'), 0)).toMatchObject({ reason: 'repository-not-allowed' });
    expect(policy.decide(trainer, asks('other/x'), 0)).toMatchObject({ reason: 'repository-not-allowed' });
    expect(policy.decide(k8s('default', 'trainer'), asks('acme/models'), 0)).toMatchObject({
      reason: 'no-matching-rule',
    });
    expect(policy.decide(k8s('training', 'default'), asks('acme/models'), 0)).toMatchObject({
      reason: 'no-matching-rule',
    });
    // A dot path that reads two ways with different answers is ambiguous, so it matches nothing.
    const ambiguous: PolicySubject = {
      issuer: 'k8s',
      claims: { ...trainer.claims, 'kubernetes.io.namespace': 'default' },
    };
    expect(policy.decide(ambiguous, asks('acme/models'), 0)).toMatchObject({ reason: 'no-matching-rule' });
  });

  it('matches API token holders by token name glob', () => {
    const policy = createAccessPolicy([
      {
        name: 'ci-tokens',
        match: { issuer: 'api-token', token: 'ci-*' },
        allow: { providers: ['*'], repositories: ['acme/*'] },
      },
    ]);
    expect(policy.decide(tokenHolder('ci-build'), request(), 0).allowed).toBe(true);
    expect(policy.decide(tokenHolder('deployer'), request(), 0)).toMatchObject({
      reason: 'no-matching-rule',
    });
    expect(policy.decide(actions({ repository: 'acme/models' }), request(), 0).allowed).toBe(false);
  });
});

describe('repository and provider patterns', () => {
  const policy = createAccessPolicy([
    {
      name: 'deep',
      match: { issuer: 'api-token' },
      allow: { providers: ['gitlab'], repositories: ['acme/**/models', 'tools/**', 'kube/models'] },
    },
  ]);
  const asks = (repository: string, provider = 'gitlab') =>
    policy.decide(tokenHolder('ci'), request({ provider, repository }), 0);

  it('** crosses segments, and a whole-segment ** also stands for none', () => {
    for (const repository of [
      'acme/models',
      'acme/ml/models',
      'acme/a/b/c/models',
      'tools/x',
      'tools/x/y/z',
    ]) {
      expect(asks(repository).allowed, repository).toBe(true);
    }
    for (const repository of ['acme/models-old', 'acme/ml/datasets', 'other/tools/x']) {
      expect(asks(repository).allowed, repository).toBe(false);
    }
  });

  it('ignores case in repositories and providers, but only ASCII case', () => {
    expect(asks('ACME/ML/Models', 'GitLab').allowed).toBe(true);
    expect(asks('KUBE/Models').allowed).toBe(true);
    // U+212A KELVIN SIGN folds to "k" under Unicode rules; a host would not treat it as the same path.
    expect(asks('\u212Aube/models').allowed).toBe(false);
    expect(asks('acme/models', 'github')).toMatchObject({
      allowed: false,
      reason: 'provider-not-allowed',
      message: 'provider-not-allowed: github is not in [gitlab] (rule deep)',
    });
  });
});

describe('limits of a rule', () => {
  const policy = createAccessPolicy([
    {
      name: 'limited',
      match: { issuer: 'api-token' },
      allow: { providers: ['github'], repositories: ['acme/*'], maxTtlSeconds: 3600, maxActiveKeys: 3 },
    },
  ]);
  const caller = tokenHolder('ci');

  it('refuses a TTL over the maximum and says what the maximum is', () => {
    expect(policy.decide(caller, request({ ttlSeconds: 3600 }), 0).allowed).toBe(true);
    expect(policy.decide(caller, request({ ttlSeconds: 3601 }), 0)).toEqual({
      allowed: false,
      reason: 'ttl-too-long',
      rule: 'limited',
      message: 'ttl-too-long: 3601s exceeds the maximum of 3600s (rule limited)',
    });
  });

  it('hands out private keys in the response only where a rule allows it', () => {
    expect(policy.decide(caller, request({ delivery: 'vault' }), 0).allowed).toBe(true);
    expect(policy.decide(caller, request({ delivery: 'wrapped' }), 0).allowed).toBe(true);
    expect(policy.decide(caller, request({ delivery: 'response' }), 0)).toMatchObject({
      allowed: false,
      reason: 'delivery-not-allowed',
      message: 'delivery-not-allowed: response is not in [vault, wrapped] (rule limited)',
    });
    const inResponse = createAccessPolicy([
      {
        name: 'response-ok',
        match: { issuer: 'api-token' },
        allow: { providers: ['github'], repositories: ['acme/*'], deliveries: ['response'] },
      },
    ]);
    expect(inResponse.decide(caller, request({ delivery: 'response' }), 0).allowed).toBe(true);
    expect(inResponse.decide(caller, request({ delivery: 'vault' }), 0).allowed).toBe(false);
  });

  it('caps the live keys of one caller and reports the cap on allow', () => {
    expect(policy.decide(caller, request(), 2)).toEqual({ allowed: true, rule: 'limited', maxActiveKeys: 3 });
    expect(policy.decide(caller, request(), 3)).toMatchObject({
      allowed: false,
      reason: 'too-many-active-keys',
      message: 'too-many-active-keys: 3 keys are active, the limit is 3 (rule limited)',
    });
  });

  it("counts a caller's live keys only up to the largest limit of the rules that apply to it", () => {
    const layered = createAccessPolicy([
      {
        name: 'ci-small',
        match: { issuer: 'api-token', token: 'ci' },
        allow: { providers: ['github'], repositories: ['acme/models'], maxActiveKeys: 3 },
      },
      {
        name: 'ci-wide',
        match: { issuer: 'api-token', token: 'ci' },
        allow: { providers: ['github'], repositories: ['acme/*'], maxActiveKeys: 40 },
      },
      {
        name: 'other-huge',
        match: { issuer: 'api-token', token: 'other' },
        allow: { providers: ['github'], repositories: ['acme/*'], maxActiveKeys: 1_000 },
      },
      {
        name: 'unlimited',
        match: { issuer: 'api-token', token: 'free' },
        allow: { providers: ['github'], repositories: ['acme/*'] },
      },
    ]);
    expect(layered.liveKeyCap(caller)).toBe(40);
    expect(layered.liveKeyCap(tokenHolder('other'))).toBe(1_000);
    // No limited rule applies: no count is needed at all.
    expect(layered.liveKeyCap(tokenHolder('free'))).toBeUndefined();
    // A count stopped at the cap decides as the full count would: the first rule is full, the second is not.
    expect(layered.decide(caller, request(), 3)).toMatchObject({ allowed: true, rule: 'ci-wide' });
    expect(layered.decide(caller, request(), 40)).toMatchObject({
      allowed: false,
      reason: 'too-many-active-keys',
    });
  });
});

describe('rule order', () => {
  const rules: PolicyRule[] = [
    {
      name: 'models-short',
      match: { issuer: 'api-token' },
      allow: { providers: ['github'], repositories: ['acme/models'], maxTtlSeconds: 600 },
    },
    {
      name: 'data-long',
      match: { issuer: 'api-token', token: 'data-*' },
      allow: { providers: ['github'], repositories: ['acme/data'], maxTtlSeconds: 86_400 },
    },
    {
      name: 'actions',
      match: { issuer: 'github-actions' },
      allow: { providers: ['github'], repositories: ['x/y'] },
    },
  ];
  const policy = createAccessPolicy(rules);

  it('is allowed by the first applicable rule that permits, even after one that does not', () => {
    expect(
      policy.decide(tokenHolder('data-sync'), request({ repository: 'acme/data', ttlSeconds: 7200 }), 0),
    ).toEqual({
      allowed: true,
      rule: 'data-long',
    });
  });

  it('when no rule permits, gives the reason of the first applicable rule', () => {
    expect(policy.decide(tokenHolder('data-sync'), request({ repository: 'acme/other' }), 0)).toEqual({
      allowed: false,
      reason: 'repository-not-allowed',
      rule: 'models-short',
      message: 'repository-not-allowed: acme/other is not in [acme/models] (rule models-short)',
    });
  });

  it('denies with no-matching-rule when no rule applies, and with an empty policy', () => {
    const stranger: PolicySubject = { issuer: 'gitlab-ci', claims: { project_path: 'acme/models' } };
    for (const p of [policy, createAccessPolicy([])]) {
      expect(p.decide(stranger, request(), 0)).toEqual({
        allowed: false,
        reason: 'no-matching-rule',
        message: 'no-matching-rule: no policy rule applies to this caller (issuer gitlab-ci)',
      });
    }
  });

  it('explain() says for every rule whether it applied and why', () => {
    const explanation = policy.explain(tokenHolder('ci'), request({ repository: 'acme/data' }), 0);
    expect(explanation.decision).toMatchObject({ allowed: false, reason: 'repository-not-allowed' });
    expect(explanation.rules).toEqual([
      {
        name: 'models-short',
        callerMatched: true,
        why: 'applies and denies: repository-not-allowed: acme/data is not in [acme/models] (rule models-short) (this rule decides)',
      },
      { name: 'data-long', callerMatched: false, why: 'does not apply: token name ci does not match data-*' },
      {
        name: 'actions',
        callerMatched: false,
        why: 'does not apply: issuer is api-token, the rule wants github-actions',
      },
    ]);
    const allowed = policy.explain(tokenHolder('data-x'), request({ repository: 'acme/models' }), 0);
    expect(allowed.rules.map((r) => r.why)).toEqual([
      'applies and permits this request (this rule decides)',
      'applies and denies: repository-not-allowed: acme/models is not in [acme/data] (rule data-long) (not consulted: an earlier rule allowed the request)',
      'does not apply: issuer is api-token, the rule wants github-actions',
    ]);
    const missing = createAccessPolicy([
      {
        name: 'main',
        match: { issuer: 'github-actions', claims: { ref: 'refs/heads/main' } },
        allow: ownRepo.allow,
      },
    ]).explain(actions({ ref: 'refs/heads/dev' }), request(), 0);
    expect(missing.rules[0]?.why).toBe(
      'does not apply: claim ref is refs/heads/dev, which does not match refs/heads/main',
    );
  });
});

describe('validate()', () => {
  it('accepts an empty policy and a sound one', () => {
    expect(createAccessPolicy([]).validate()).toEqual([]);
    expect(
      createAccessPolicy([ownRepo], { issuers: ['github-actions'], providers: ['github'] }).validate(),
    ).toEqual([]);
  });

  it('refuses a rule that would match every caller, which also matches nobody at run time', () => {
    const everyone: PolicyRule = {
      name: 'everyone',
      match: {},
      allow: { providers: ['*'], repositories: ['**'] },
    };
    const anyIssuer: PolicyRule = { ...everyone, name: 'any-issuer', match: { claims: { sub: '**' } } };
    const policy = createAccessPolicy([everyone, anyIssuer]);
    expect(policy.validate()).toEqual([
      'policy[0] (everyone): match names neither an issuer nor claims, so the rule would match every caller',
      'policy[1] (any-issuer): match has no issuer and only wildcard claims, so the rule would match callers of every issuer',
    ]);
    expect(policy.decide(tokenHolder('ci'), request(), 0)).toMatchObject({ reason: 'no-matching-rule' });
    expect(policy.decide(actions({ sub: 'repo:acme/a' }), request(), 0)).toMatchObject({
      reason: 'no-matching-rule',
    });
  });

  it('names placeholder syntax it does not understand, and other mistakes', () => {
    const rule = (
      name: string,
      repositories: string[],
      match: PolicyRule['match'] = { issuer: 'k8s' },
    ): PolicyRule => ({
      name,
      match,
      allow: { providers: ['githb'], repositories },
    });
    const problems = createAccessPolicy(
      [
        rule('mustache', ['{{repository}}']),
        rule('unclosed', [`\${repository`]),
        rule('bare', ['$repository']),
        rule('classes', ['acme/[ab]*']),
        rule('token', ['acme/*'], { issuer: 'k8s', token: 'ci-*' }),
        rule('token', [`acme/\${kubernetes.io.namespace}`], { issuer: 'k8z' }),
      ],
      { issuers: ['k8s'], providers: ['github'] },
    ).validate();
    expect(problems).toEqual(
      expect.arrayContaining([
        `policy[0] (mustache): allow.repositories[0] "{{repository}}" uses "{" outside a "\${claim}" placeholder`,
        `policy[1] (unclosed): allow.repositories[0] "\${repository" has a "\${" without its closing "}"`,
        `policy[2] (bare): allow.repositories[0] "$repository" uses "$" outside a "\${claim}" placeholder`,
        'policy[3] (classes): allow.repositories[0] "acme/[ab]*" uses [ ], but character classes are not supported',
        'policy[4] (token): match.token only applies to issuer "api-token"',
        'policy[5]: rule name "token" is used twice',
        'policy[5] (token): match.issuer "k8z" is not a configured issuer',
        'policy[0] (mustache): allow.providers[0] "githb" matches no configured host',
      ]),
    );
    expect(problems.filter((p) => p.startsWith('policy[5] (token): allow.repositories'))).toEqual([]);
  });
});

describe('PolicySchema', () => {
  it('checks a policy written in YAML and rejects misspelt settings', () => {
    const good = parseYaml(`
- name: actions-own-repo
  match: { issuer: github-actions, claims: { ref: refs/heads/main } }
  allow: { providers: [github], repositories: ['\${repository}'], maxTtlSeconds: 3600 }
`);
    expect(Value.Check(PolicySchema, good)).toBe(true);
    const typo = parseYaml(`
- name: typo
  match: { issuer: github-actions }
  allow: { providers: [github], repository: ['acme/*'] }
`);
    expect(Value.Check(PolicySchema, typo)).toBe(false);
    const badDelivery = [{ ...ownRepo, allow: { ...ownRepo.allow, deliveries: ['email'] } }];
    expect(Value.Check(PolicySchema, badDelivery)).toBe(false);
  });
});
