import { readFileSync } from 'node:fs';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { stringify } from 'yaml';
import { projectPath } from '../project-root.ts';
import type { App } from './app.ts';
import { withCommonHeaders } from './openapi-headers.ts';
import { ProblemSchema } from './schemas.ts';

export const DOCS_PATH = '/docs';
export const SPEC_JSON_PATH = '/openapi.json';
export const SPEC_YAML_PATH = '/openapi.yaml';
export const SECURITY_SCHEME = 'bearerAuth';

export type OpenApiDocument = Record<string, unknown> & {
  paths: Record<string, Record<string, Record<string, unknown>>>;
};

const { version } = JSON.parse(readFileSync(projectPath('package.json'), 'utf8')) as {
  version: string;
};

const DESCRIPTION = `Hands out short-lived, per-repository, read-only SSH deploy keys for GitHub, GitLab and Gitea/Forgejo, keeps the \
private half in HashiCorp Vault and revokes every key at the host and in Vault no later than its expiry.

**Authentication.** Every \`/v1\` operation takes \`Authorization: Bearer <token>\`: an API token (\`dkr_…\`, \
made with \`deploykey token create\`) or an OIDC ID token (JWT) from a configured issuer such as GitHub Actions, \
GitLab CI or a Kubernetes service account. The caller's role (issuer, auditor, admin) and the access policy decide \
what it may do.

**Errors** are RFC 9457 \`application/problem+json\` documents (the \`Problem\` schema) with a stable \`code\`.`;

const TAGS = [
  { name: 'keys', description: 'Issue, read and revoke deploy keys' },
  { name: 'jobs', description: 'Tell the service a job is done, so its keys are revoked now' },
  { name: 'audit', description: 'The append-only, hash-chained audit log (auditors and admins)' },
  { name: 'tokens', description: 'API token administration (admins)' },
  { name: 'operations', description: 'Probes and metrics for the platform that runs the service' },
  {
    name: 'webhooks',
    description:
      'Signed job-end deliveries from GitHub Actions and GitLab CI, which revoke the keys bound to that job',
  },
];

const BASE_DOCUMENT = {
  openapi: '3.1.0',
  info: {
    title: 'deploykey-rotator',
    version,
    summary:
      'Short-lived, read-only SSH deploy keys for GitHub, GitLab and Gitea, kept in Vault and always revoked.',
    description: DESCRIPTION,
    license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
  },
  servers: [{ url: '/', description: 'The instance serving this document' }],
  security: [{ [SECURITY_SCHEME]: [] }],
  tags: TAGS,
  components: {
    securitySchemes: {
      [SECURITY_SCHEME]: {
        type: 'http' as const,
        scheme: 'bearer',
        description:
          'An API token (`dkr_…`) or an OIDC ID token (JWT) from a configured issuer, whose `aud` is the ' +
          'configured audience (`deploykey-rotator` by default).',
      },
    },
  },
};

/**
 * Routes that are not part of the API contract: `/_`-prefixed admin routes and the audit console's
 * pages (a web app, not an API). The documentation routes hide themselves.
 */
export function isUndocumentedUrl(url: string): boolean {
  return url.startsWith('/_') || url === '/ui' || url.startsWith('/ui/');
}

// The page runs only the bundled Swagger UI files served below; the spec comes from this origin.
// Swagger UI sets style attributes and draws its icons as data: URIs, hence those two allowances.
const DOCS_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * Registers the shared schemas the routes refer to (`Problem`), the spec generator, `/docs` and the
 * spec at `/openapi.json` and `/openapi.yaml`. Call it before any route: only routes added after it
 * are documented.
 */
export async function registerOpenApi(app: App): Promise<void> {
  const routes: RegisteredRoute[] = [];
  ROUTES.set(app, routes);
  app.addHook('onRoute', ({ method, url }) => {
    for (const one of [method].flat()) routes.push({ method: one, url });
  });
  app.addSchema(ProblemSchema);
  await app.register(swagger, {
    openapi: BASE_DOCUMENT,
    transform: ({ schema, url }) => ({
      schema: isUndocumentedUrl(url) ? { ...schema, hide: true } : schema,
      url,
    }),
    transformObject: (documentObject) =>
      orderDocument((documentObject as { openapiObject: Record<string, unknown> }).openapiObject),
    // Named schemas keep their name, so errors refer to `#/components/schemas/Problem`.
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) =>
        typeof json.$id === 'string' ? json.$id : `def-${i}`,
    },
  });
  await app.register(swaggerUi, {
    routePrefix: DOCS_PATH,
    staticCSP: DOCS_CONTENT_SECURITY_POLICY,
    theme: { title: 'deploykey-rotator API' },
    uiConfig: { deepLinking: true, docExpansion: 'list', defaultModelsExpandDepth: 0 },
    logLevel: 'warn',
  });

  app.get(SPEC_JSON_PATH, { schema: { hide: true }, logLevel: 'warn' }, async (_request, reply) =>
    reply.type('application/json; charset=utf-8').send(JSON.stringify(openApiDocument(app), null, 2)),
  );
  let yaml: string | undefined;
  app.get(SPEC_YAML_PATH, { schema: { hide: true }, logLevel: 'warn' }, async (_request, reply) => {
    yaml ??= openApiYaml(openApiDocument(app));
    return reply.type('application/yaml; charset=utf-8').send(yaml);
  });
}

export interface RegisteredRoute {
  method: string;
  url: string;
}
const ROUTES = new WeakMap<App, RegisteredRoute[]>();

/** Every route added after registerOpenApi, documented or not, HEAD included: what the spec is checked against. */
export function registeredRoutes(app: App): RegisteredRoute[] {
  return [...(ROUTES.get(app) ?? [])];
}

/** The spec of every documented route of a ready app. */
export function openApiDocument(app: App): OpenApiDocument {
  return app.swagger() as unknown as OpenApiDocument;
}

/** The committed `openapi.yaml`: plain YAML, no anchors, one line per value so diffs stay small. */
export function openApiYaml(document: OpenApiDocument): string {
  const header = '# Generated from the route schemas by `npm run openapi`; do not edit by hand.\n';
  return header + stringify(document, { aliasDuplicateObjects: false, lineWidth: 0 });
}

const TOP_LEVEL = ['openapi', 'info', 'servers', 'security', 'tags', 'paths', 'webhooks', 'components'];
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'];
const PATH_ITEM = ['summary', 'description', 'parameters', ...METHODS];
const OPERATION = ['tags', 'summary', 'description', 'operationId', 'security', 'parameters', 'requestBody'];

type Json = Record<string, unknown>;

/** Keys named in `first` in that order, then the rest sorted, so the output never depends on load order. */
function ordered(object: Json, first: string[], sortRest = true): Json {
  const rest = Object.keys(object).filter((key) => !first.includes(key));
  const keys = [...first.filter((key) => key in object), ...(sortRest ? rest.sort() : rest)];
  return Object.fromEntries(keys.map((key) => [key, object[key]]));
}

function sortedEntries(object: Json | undefined, map: (value: Json) => unknown = (value) => value): Json {
  return Object.fromEntries(
    Object.keys(object ?? {})
      .sort()
      .map((key) => [key, map((object as Json)[key] as Json)]),
  );
}

function orderOperation(operation: Json): Json {
  const responses = withCommonHeaders(sortedEntries(operation.responses as Json));
  return ordered({ ...operation, responses }, [...OPERATION, 'responses']);
}

function orderDocument(document: Json): Json {
  const paths = sortedEntries(document.paths as Json, (item) => {
    const methods = Object.fromEntries(
      Object.entries(item).map(([key, value]) => [
        key,
        METHODS.includes(key) ? orderOperation(value as Json) : value,
      ]),
    );
    return ordered(methods, PATH_ITEM);
  });
  const used = new Set(
    Object.values(paths).flatMap((item) =>
      Object.values(item as Json).flatMap((operation) => ((operation as Json).tags as string[]) ?? []),
    ),
  );
  const components = document.components as Json;
  return ordered(
    {
      ...document,
      tags: [
        ...TAGS.filter((tag) => used.has(tag.name)),
        ...[...used].filter((name) => !TAGS.some((tag) => tag.name === name)).map((name) => ({ name })),
      ],
      paths,
      components: ordered(
        {
          ...components,
          schemas: sortedEntries(components.schemas as Json),
          securitySchemes: sortedEntries(components.securitySchemes as Json),
        },
        ['securitySchemes', 'schemas'],
      ),
    },
    TOP_LEVEL,
  );
}
