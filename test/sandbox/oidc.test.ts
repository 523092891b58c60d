import { createRemoteJWKSet, decodeProtectedHeader, type JWTPayload, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OidcStandIn, startOidcStandIn } from '../../sandbox/oidc/stand-in.ts';

let standIn: OidcStandIn;
let discovery: Record<string, unknown>;

beforeAll(async () => {
  standIn = await startOidcStandIn();
  discovery = (await (await fetch(`${standIn.issuer}/.well-known/openid-configuration`)).json()) as Record<
    string,
    unknown
  >;
});
afterAll(() => standIn.close());

/** Verifies like a relying party would: keys from the discovery document's jwks_uri. */
async function verified(token: string, audience = 'deploykey-rotator'): Promise<JWTPayload> {
  const keys = createRemoteJWKSet(new URL(discovery.jwks_uri as string));
  const { payload } = await jwtVerify(token, keys, {
    issuer: standIn.issuer,
    audience,
    algorithms: ['RS256'],
  });
  return payload;
}

async function mintOverHttp(body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(standIn.mintUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('discovery and keys', () => {
  it('serves a discovery document shaped like GitHub’s, naming itself and its JWKS', () => {
    expect(discovery).toMatchObject({
      issuer: standIn.issuer,
      jwks_uri: standIn.jwksUri,
      response_types_supported: ['id_token'],
      subject_types_supported: expect.arrayContaining(['public']),
      id_token_signing_alg_values_supported: ['RS256'],
    });
    expect(discovery.claims_supported).toEqual(
      expect.arrayContaining([
        'sub',
        'repository_owner',
        'job_workflow_ref',
        'project_path',
        'kubernetes.io',
      ]),
    );
  });

  it('publishes only public RSA signing keys, each with a kid', async () => {
    const jwks = (await (await fetch(standIn.jwksUri)).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys).toHaveLength(1);
    expect(Object.keys(jwks.keys[0]!).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use']);
    expect(jwks.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig', kid: expect.any(String) });
  });

  it('after rotateKey signs with a new kid and still publishes the old key', async () => {
    const rotating = await startOidcStandIn();
    try {
      const before = await rotating.mint('github-actions');
      rotating.rotateKey();
      const after = await rotating.mint('github-actions');
      const jwks = (await (await fetch(rotating.jwksUri)).json()) as { keys: { kid: string }[] };
      const kids = [before, after].map((token) => decodeProtectedHeader(token).kid);
      expect(kids[0]).not.toBe(kids[1]);
      expect(jwks.keys.map((key) => key.kid)).toEqual(kids);
      const keys = createRemoteJWKSet(new URL(rotating.jwksUri));
      for (const token of [before, after]) {
        await expect(jwtVerify(token, keys, { issuer: rotating.issuer })).resolves.toBeDefined();
      }
      expect(rotating.privateJwk()).toMatchObject({ kty: 'RSA', kid: kids[1], d: expect.any(String) });
    } finally {
      await rotating.close();
    }
  });
});

describe('GitHub Actions tokens', () => {
  it('carry GitHub’s claims, derived from the default repository and ref', async () => {
    const token = await standIn.mint('github-actions');
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'RS256', typ: 'JWT', kid: expect.any(String) });
    const claims = await verified(token);
    expect(claims).toMatchObject({
      iss: standIn.issuer,
      aud: 'deploykey-rotator',
      sub: 'repo:acme/models:ref:refs/heads/main',
      repository: 'acme/models',
      repository_owner: 'acme',
      repository_id: expect.stringMatching(/^\d+$/),
      ref: 'refs/heads/main',
      ref_type: 'branch',
      ref_protected: 'true',
      workflow: expect.any(String),
      job_workflow_ref: 'acme/models/.github/workflows/ci.yml@refs/heads/main',
      sha: expect.stringMatching(/^[0-9a-f]{40}$/),
      run_id: expect.stringMatching(/^\d+$/),
      actor: expect.any(String),
      runner_environment: 'github-hosted',
      jti: expect.any(String),
    });
    expect(claims.nbf!).toBeLessThanOrEqual(claims.iat!);
    expect(claims.exp!).toBeGreaterThan(claims.iat!);
    expect(claims.jti).not.toBe((await verified(await standIn.mint('github-actions'))).jti);
  });

  it('derive the subject and owner from the claims given, which override the defaults', async () => {
    const claims = await verified(
      await standIn.mint('github-actions', {
        repository: 'octo/tools',
        ref: 'refs/tags/v1.2',
        workflow: 'Release',
      }),
    );
    expect(claims).toMatchObject({
      sub: 'repo:octo/tools:ref:refs/tags/v1.2',
      repository_owner: 'octo',
      ref_type: 'tag',
      ref_protected: 'false',
      workflow: 'Release',
    });
    const deploy = await verified(await standIn.mint('github-actions', { environment: 'production' }));
    expect(deploy).toMatchObject({
      sub: 'repo:acme/models:environment:production',
      environment: 'production',
    });
  });
});

describe('GitLab CI tokens', () => {
  it('carry GitLab’s id_tokens claims with its subject format', async () => {
    const token = await standIn.mint('gitlab-ci');
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'RS256', typ: 'JWT' });
    expect(await verified(token)).toMatchObject({
      sub: 'project_path:acme/models:ref_type:branch:ref:main',
      project_path: 'acme/models',
      project_id: expect.stringMatching(/^\d+$/),
      namespace_path: 'acme',
      namespace_id: expect.stringMatching(/^\d+$/),
      ref: 'main',
      ref_type: 'branch',
      ref_path: 'refs/heads/main',
      ref_protected: 'true',
      pipeline_id: expect.stringMatching(/^\d+$/),
      job_id: expect.stringMatching(/^\d+$/),
      user_login: expect.any(String),
    });
  });

  it('derive namespace and subject from a nested project path and a tag', async () => {
    const claims = await verified(
      await standIn.mint('gitlab-ci', { project_path: 'ml/vision/models', ref: 'v2', ref_type: 'tag' }),
    );
    expect(claims).toMatchObject({
      sub: 'project_path:ml/vision/models:ref_type:tag:ref:v2',
      namespace_path: 'ml/vision',
      ref_path: 'refs/tags/v2',
      ref_protected: 'false',
    });
  });
});

describe('Kubernetes service account tokens', () => {
  it('nest the pod and service account under kubernetes.io and list the audience', async () => {
    const token = await standIn.mint('kubernetes');
    const claims = await verified(token);
    expect(claims).toMatchObject({
      sub: 'system:serviceaccount:training:trainer',
      aud: ['deploykey-rotator'],
      'kubernetes.io': {
        namespace: 'training',
        serviceaccount: { name: 'trainer', uid: expect.any(String) },
        pod: { name: expect.stringMatching(/^trainer-/), uid: expect.any(String) },
      },
    });
    expect(claims).not.toHaveProperty('namespace');
  });

  it('take the account from flat inputs or from the nested claim', async () => {
    const flat = await verified(
      await standIn.mint('kubernetes', { namespace: 'ml', serviceaccount: 'runner' }),
    );
    expect(flat).toMatchObject({
      sub: 'system:serviceaccount:ml:runner',
      'kubernetes.io': { namespace: 'ml' },
    });
    expect(flat).not.toHaveProperty('serviceaccount');
    const nested = await verified(
      await standIn.mint('kubernetes', {
        'kubernetes.io': { namespace: 'batch', serviceaccount: { name: 'etl', uid: 'sa-1' } },
      }),
    );
    expect(nested).toMatchObject({
      sub: 'system:serviceaccount:batch:etl',
      'kubernetes.io': {
        namespace: 'batch',
        serviceaccount: { name: 'etl', uid: 'sa-1' },
        pod: expect.any(Object),
      },
    });
  });
});

describe('mint options and the HTTP mint route', () => {
  it('applies lifetime, not-before, audience and kid options', async () => {
    const token = await standIn.mint(
      'gitlab-ci',
      {},
      { expiresInSeconds: 60, notBeforeSeconds: -30, audience: 'vault', kid: 'claimed' },
    );
    expect(decodeProtectedHeader(token).kid).toBe('claimed');
    const now = Math.floor(Date.now() / 1000);
    const { exp, nbf, aud } = JSON.parse(
      Buffer.from(token.split('.')[1]!, 'base64url').toString(),
    ) as JWTPayload;
    expect(aud).toBe('vault');
    expect(exp! - now).toBeGreaterThanOrEqual(59);
    expect(exp! - now).toBeLessThanOrEqual(60);
    expect(now - nbf!).toBeGreaterThanOrEqual(29);
  });

  it('mints over HTTP a token that verifies against the JWKS', async () => {
    const { status, body } = await mintOverHttp({
      kind: 'github-actions',
      claims: { repository: 'acme/datasets' },
    });
    expect(status).toBe(200);
    expect(await verified(body.token as string)).toMatchObject({
      sub: 'repo:acme/datasets:ref:refs/heads/main',
    });
  });

  it('answers an invalid body with 400 and a JSON error', async () => {
    const cases: [unknown, RegExp][] = [
      ['{"kind"', /JSON/i],
      [{ kind: 'jenkins' }, /kind/],
      [{ kind: 'gitlab-ci', claims: [] }, /claims/],
      [{ kind: 'gitlab-ci', extra: 1 }, /additional|extra/i],
      [{ kind: 'kubernetes', expiresInSeconds: 'soon' }, /expiresInSeconds/],
    ];
    for (const [body, mentions] of cases) {
      const answer = await mintOverHttp(body);
      expect(answer.status).toBe(400);
      expect(answer.body).toEqual({ error: expect.stringMatching(mentions) });
    }
  });

  it('fails the JWKS on demand through the fault injector', async () => {
    standIn.faults.add({ status: 500, pathPrefix: '/.well-known/jwks', count: 1 });
    const response = await fetch(standIn.jwksUri);
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ error: '500' });
    expect((await fetch(standIn.jwksUri)).status).toBe(200);
  });
});
