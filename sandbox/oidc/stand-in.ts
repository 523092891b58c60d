// Local stand-in for the OIDC issuers callers bring: one issuer that serves a discovery document and
// a JWKS like token.actions.githubusercontent.com's, and mints RS256 ID tokens shaped like those of
// GitHub Actions, GitLab CI (`id_tokens`) and Kubernetes (projected service account tokens).
import { createHash, type JsonWebKey, type KeyObject, randomBytes, randomInt, randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import { SignJWT } from 'jose';
import Type, { type Static } from 'typebox';
import Value from 'typebox/value';
import { type FaultInjector, registerFaults } from '../shared/faults.ts';
import { rsaKeyPair } from '../shared/rsa-keys.ts';

export type OidcPlatform = 'github-actions' | 'gitlab-ci' | 'kubernetes';

export interface MintOptions {
  /** `exp` = now + this; negative mints an expired token. Default: the platform's lifetime. */
  expiresInSeconds?: number;
  /** `nbf` = now + this; positive mints a token not valid yet. Default: the platform's. */
  notBeforeSeconds?: number;
  audience?: string;
  /** Header `kid` to claim instead of the signing key's own. */
  kid?: string;
}

export interface OidcStandIn {
  issuer: string;
  mintUrl: string;
  jwksUri: string;
  mint(kind: OidcPlatform, claims?: Record<string, unknown>, options?: MintOptions): Promise<string>;
  /** Publishes a new signing key (new kid) next to the old ones and signs with it from now on. */
  rotateKey(): void;
  privateJwk(): JsonWebKey;
  publicKeyPem(): string;
  faults: FaultInjector;
  close(): Promise<void>;
}

type Claims = Record<string, unknown>;

interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

interface Platform {
  header: Record<string, string>;
  lifetimeSeconds: number;
  notBeforeSeconds: number;
  audience(audience: string): string | string[];
  claims(given: Claims, issuer: URL): Claims;
}

const isObject = (value: unknown): value is Claims =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const text = (value: unknown, fallback: string) =>
  typeof value === 'string' && value.length > 0 ? value : fallback;
const numericId = (seed: string) =>
  String((createHash('sha256').update(seed).digest().readUInt32BE(0) % 90_000_000) + 10_000_000);
const commitSha = () => randomBytes(20).toString('hex');

function githubClaims(given: Claims): Claims {
  const repository = text(given.repository, 'acme/models');
  const ref = text(given.ref, 'refs/heads/main');
  const owner = text(given.repository_owner, repository.split('/')[0] ?? repository);
  const environment = typeof given.environment === 'string' ? given.environment : undefined;
  const eventName = text(given.event_name, 'push');
  const sha = text(given.sha, commitSha());
  const actor = text(given.actor, 'deploy-bot');
  const workflowRef = `${repository}/.github/workflows/ci.yml@${ref}`;
  // GitHub's default subject template: an environment wins over a pull request, which wins over the ref.
  const subject = environment
    ? `repo:${repository}:environment:${environment}`
    : eventName === 'pull_request'
      ? `repo:${repository}:pull_request`
      : `repo:${repository}:ref:${ref}`;
  return {
    sub: subject,
    ...(environment === undefined ? {} : { environment }),
    ref,
    sha,
    repository,
    repository_owner: owner,
    actor_id: numericId(actor),
    repository_visibility: 'private',
    repository_id: numericId(repository),
    repository_owner_id: numericId(owner),
    run_id: String(randomInt(1e9, 2 ** 32)),
    run_number: '1',
    run_attempt: '1',
    // The job's check run id (a job is a check run in Actions), in tokens since November 2025.
    check_run_id: String(randomInt(1e10, 2 ** 40)),
    runner_environment: 'github-hosted',
    actor,
    workflow: 'CI',
    workflow_ref: workflowRef,
    workflow_sha: sha,
    head_ref: '',
    base_ref: '',
    event_name: eventName,
    // GitHub sends booleans of its custom claims as the strings "true"/"false".
    ref_protected: String(ref === 'refs/heads/main'),
    ref_type: ref.startsWith('refs/tags/') ? 'tag' : 'branch',
    job_workflow_ref: workflowRef,
    job_workflow_sha: sha,
    ...given,
  };
}

function gitlabClaims(given: Claims, issuer: URL): Claims {
  const projectPath = text(given.project_path, 'acme/models');
  const namespacePath = text(given.namespace_path, projectPath.slice(0, projectPath.lastIndexOf('/')));
  const ref = text(given.ref, 'main');
  const refType = text(given.ref_type, 'branch');
  const refPath = text(given.ref_path, `refs/${refType === 'tag' ? 'tags' : 'heads'}/${ref}`);
  const sha = text(given.sha, commitSha());
  const userLogin = text(given.user_login, 'deploy-bot');
  const environment = typeof given.environment === 'string' ? given.environment : undefined;
  return {
    sub: `project_path:${projectPath}:ref_type:${refType}:ref:${ref}`,
    namespace_id: numericId(namespacePath),
    namespace_path: namespacePath,
    project_id: numericId(projectPath),
    project_path: projectPath,
    user_id: numericId(userLogin),
    user_login: userLogin,
    user_email: `${userLogin}@example.com`,
    user_access_level: 'developer',
    job_project_id: numericId(projectPath),
    job_project_path: projectPath,
    job_namespace_id: numericId(namespacePath),
    job_namespace_path: namespacePath,
    pipeline_id: String(randomInt(1e9, 2 ** 32)),
    pipeline_source: 'push',
    job_id: String(randomInt(1e10, 2 ** 40)),
    ref,
    ref_type: refType,
    ref_path: refPath,
    // Like GitHub, GitLab sends ref_protected (and environment_protected) as strings.
    ref_protected: String(refType === 'branch' && ref === 'main'),
    ...(environment === undefined
      ? {}
      : {
          environment,
          environment_protected: 'false',
          deployment_tier: 'other',
          environment_action: 'start',
        }),
    runner_id: randomInt(1e6, 1e8),
    runner_environment: 'gitlab-hosted',
    sha,
    project_visibility: 'private',
    ci_config_ref_uri: `${issuer.host}/${projectPath}//.gitlab-ci.yml@${refPath}`,
    ci_config_sha: sha,
    ...given,
  };
}

// Accepts the account as flat `namespace`/`serviceaccount` inputs or as the real nested claim.
function kubernetesClaims(given: Claims): Claims {
  const { namespace: flatNamespace, serviceaccount: flatAccount, 'kubernetes.io': nested, ...rest } = given;
  const identity = isObject(nested) ? nested : {};
  const account = isObject(identity.serviceaccount) ? identity.serviceaccount : {};
  const namespace = text(flatNamespace, text(identity.namespace, 'training'));
  const name = text(flatAccount, text(account.name, 'trainer'));
  return {
    sub: `system:serviceaccount:${namespace}:${name}`,
    'kubernetes.io': {
      ...identity,
      namespace,
      node: isObject(identity.node) ? identity.node : { name: 'worker-1', uid: randomUUID() },
      pod: isObject(identity.pod)
        ? identity.pod
        : { name: `${name}-${randomBytes(4).toString('hex').slice(0, 5)}`, uid: randomUUID() },
      serviceaccount: { ...account, name, uid: text(account.uid, randomUUID()) },
    },
    ...rest,
  };
}

const PLATFORMS: Record<OidcPlatform, Platform> = {
  // Times as in GitHub's documented example token: nbf 10 minutes back, exp 5 minutes ahead.
  'github-actions': {
    header: { typ: 'JWT' },
    lifetimeSeconds: 300,
    notBeforeSeconds: -600,
    audience: (audience) => audience,
    claims: githubClaims,
  },
  // GitLab backdates nbf by 5 seconds; the token lives for the job timeout (default 1 h) plus 5 minutes.
  'gitlab-ci': {
    header: { typ: 'JWT' },
    lifetimeSeconds: 3900,
    notBeforeSeconds: -5,
    audience: (audience) => audience,
    claims: gitlabClaims,
  },
  // The kubelet requests 3607 s by default; `aud` is always a list in service account tokens.
  kubernetes: {
    header: {},
    lifetimeSeconds: 3607,
    notBeforeSeconds: 0,
    audience: (audience) => [audience],
    claims: kubernetesClaims,
  },
};

const CLAIMS_SUPPORTED = `sub aud exp iat iss jti nbf ref sha environment runner_environment
  repository repository_id repository_owner repository_owner_id repository_visibility run_id run_number
  run_attempt check_run_id actor actor_id workflow workflow_ref workflow_sha head_ref base_ref event_name ref_type
  ref_protected job_workflow_ref job_workflow_sha project_id project_path namespace_id namespace_path user_id
  user_login user_email user_access_level job_project_id job_project_path job_namespace_id job_namespace_path
  pipeline_id pipeline_source job_id ref_path environment_protected deployment_tier environment_action
  runner_id project_visibility ci_config_ref_uri ci_config_sha kubernetes.io`.split(/\s+/);

// RFC 7638 thumbprint, the kid style of GitHub's and Kubernetes' JWKS.
function makeSigningKey(): SigningKey {
  const { privateKey, publicKey } = rsaKeyPair();
  const { e, n } = publicKey.export({ format: 'jwk' });
  const kid = createHash('sha256')
    .update(JSON.stringify({ e, kty: 'RSA', n }))
    .digest('base64url');
  return { kid, privateKey, publicKey };
}

const MintBody = Type.Object(
  {
    kind: Type.Union(Object.keys(PLATFORMS).map((kind) => Type.Literal(kind))),
    claims: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    expiresInSeconds: Type.Optional(Type.Integer()),
    notBeforeSeconds: Type.Optional(Type.Integer()),
    audience: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);

export async function startOidcStandIn(
  opts: { audience?: string; port?: number } = {},
): Promise<OidcStandIn> {
  const audience = opts.audience ?? 'deploykey-rotator';
  const keys: SigningKey[] = [makeSigningKey()];
  const current = () => keys[keys.length - 1]!;
  const app = Fastify({ logger: false });
  const faults = registerFaults(app, (status) => ({ error: String(status) }));

  app.setErrorHandler((error: { statusCode?: number; message: string }, _request, reply) => {
    const status = error.statusCode ?? 500;
    return reply.code(status).send({ error: status >= 500 ? String(status) : error.message });
  });
  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: '404' }));

  let issuerUrl = new URL('http://127.0.0.1');
  const issuer = () => issuerUrl.origin;
  const jwksUri = () => `${issuer()}/.well-known/jwks`;

  const mint: OidcStandIn['mint'] = (kind, claims = {}, options = {}) => {
    const platform = PLATFORMS[kind];
    const key = current();
    const now = Math.floor(Date.now() / 1000);
    const payload = {
      iss: issuer(),
      aud: platform.audience(audience),
      iat: now,
      nbf: now + platform.notBeforeSeconds,
      exp: now + platform.lifetimeSeconds,
      jti: randomUUID(),
      ...platform.claims(claims, issuerUrl),
      ...(options.audience === undefined ? {} : { aud: platform.audience(options.audience) }),
      ...(options.notBeforeSeconds === undefined ? {} : { nbf: now + options.notBeforeSeconds }),
      ...(options.expiresInSeconds === undefined ? {} : { exp: now + options.expiresInSeconds }),
    };
    return new SignJWT(payload)
      .setProtectedHeader({ alg: 'RS256', kid: options.kid ?? key.kid, ...platform.header })
      .sign(key.privateKey);
  };

  app.get('/.well-known/openid-configuration', async () => ({
    issuer: issuer(),
    jwks_uri: jwksUri(),
    subject_types_supported: ['public', 'pairwise'],
    response_types_supported: ['id_token'],
    claims_supported: CLAIMS_SUPPORTED,
    id_token_signing_alg_values_supported: ['RS256'],
    scopes_supported: ['openid'],
  }));

  app.get('/.well-known/jwks', async () => ({
    keys: keys.map(({ kid, publicKey }) => {
      const { kty, n, e } = publicKey.export({ format: 'jwk' });
      return { kty, alg: 'RS256', use: 'sig', kid, n, e };
    }),
  }));

  app.post('/mint', async (request, reply) => {
    const [problem] = Value.Errors(MintBody, request.body);
    if (problem)
      return reply.code(400).send({ error: `${problem.instancePath || 'body'} ${problem.message}` });
    const { kind, claims, ...options } = request.body as Static<typeof MintBody>;
    return { token: await mint(kind as OidcPlatform, claims, options) };
  });

  const address = await app.listen({ host: '127.0.0.1', port: opts.port ?? 0 });
  issuerUrl = new URL(address);

  return {
    issuer: issuer(),
    mintUrl: `${issuer()}/mint`,
    jwksUri: jwksUri(),
    mint,
    rotateKey: () => {
      keys.push(makeSigningKey());
    },
    privateJwk: () => ({
      ...current().privateKey.export({ format: 'jwk' }),
      kid: current().kid,
      alg: 'RS256',
    }),
    publicKeyPem: () => current().publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    faults,
    close: () => app.close(),
  };
}
