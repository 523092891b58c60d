// Shared by the GitHub App stand-in tests: GitHub's own description of the App routes (which
// operations, their response schemas), App JWTs signed by hand (to break one rule at a time), and
// the failure of an Octokit call.
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Ajv, type AnySchemaObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { type JWTPayload, SignJWT } from 'jose';
import sshpk from 'sshpk';
import { expect } from 'vitest';
import { rsaKeyPair } from '../../sandbox/shared/rsa-keys.ts';

type Operation = {
  responses: Record<string, { content: { 'application/json': { schema: AnySchemaObject } } }>;
};
const spec = JSON.parse(
  readFileSync(new URL('../fixtures/github-apps.openapi.json', import.meta.url), 'utf8'),
) as { paths: Record<string, Record<string, Operation>> };

// OpenAPI 3.0's `nullable` in JSON Schema terms, which ajv understands.
function nullable(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(nullable);
  if (typeof schema !== 'object' || schema === null) return schema;
  const { nullable: isNullable, ...rest } = schema as Record<string, unknown>;
  const converted = Object.fromEntries(Object.entries(rest).map(([key, value]) => [key, nullable(value)]));
  if (isNullable !== true) return converted;
  return { anyOf: [converted, { type: 'null' }] };
}

const ajv = new Ajv({ allErrors: true, strict: false });
addFormats.default(ajv);
const compiled = new Map<string, ValidateFunction>();

/** The body matches GitHub's documented schema for that path, method and status. */
export function expectGithubSchema(path: string, method: string, status: string, body: unknown): void {
  const key = `${method} ${path} ${status}`;
  let validate = compiled.get(key);
  if (!validate) {
    validate = ajv.compile(
      nullable(
        spec.paths[path]![method]!.responses[status]!.content['application/json'].schema,
      ) as AnySchemaObject,
    );
    compiled.set(key, validate);
  }
  expect(validate(body), `${key}: ${ajv.errorsText(validate.errors)}`).toBe(true);
}

const ENTERPRISE_PREFIX = '/api/v3';

/**
 * The documented App operation (`GET /app/installations/{installation_id}`) for a method and a path
 * (`x` standing for each parameter), a GitHub Enterprise `/api/v3` prefix dropped.
 */
export function appOperationFor(method: string, path: string): string | undefined {
  const unprefixed = path.startsWith(`${ENTERPRISE_PREFIX}/`) ? path.slice(ENTERPRISE_PREFIX.length) : path;
  const template = Object.keys(spec.paths).find(
    (candidate) =>
      spec.paths[candidate]![method.toLowerCase()] !== undefined &&
      new RegExp(`^${candidate.replace(/\{\w+\}/g, '[^/]+')}$`).test(unprefixed),
  );
  return template === undefined ? undefined : `${method.toUpperCase()} ${template}`;
}

/** Every App operation GitHub's description holds, as `METHOD /template`. */
export const documentedAppOperations = () =>
  Object.entries(spec.paths).flatMap(([template, methods]) =>
    Object.keys(methods).map((method) => `${method.toUpperCase()} ${template}`),
  );

export type HttpFailure = {
  status: number;
  message: string;
  response: {
    headers: Record<string, string>;
    data: { message: string; documentation_url: string; status?: string };
  };
};

export async function failure(request: Promise<unknown>): Promise<HttpFailure> {
  const error = await request.then(
    () => undefined,
    (reason: HttpFailure) => reason,
  );
  expect(error, 'expected the request to fail').toBeDefined();
  return error!;
}

export const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

/** An RSA pair as a test keeps it: the private half in PKCS#8 PEM, the public half in SPKI PEM. */
export function rsaPair(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = rsaKeyPair();
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** An App JWT with exactly the claims given (seconds since epoch), RS256 unless told otherwise. */
export async function appJwt(
  privateKeyPem: string,
  claims: { iss?: string | number; iat?: number; exp?: number },
  alg = 'RS256',
): Promise<string> {
  const key = alg.startsWith('HS')
    ? new TextEncoder().encode('a-shared-secret-of-32-bytes-long')
    : createPrivateKey(privateKeyPem);
  // GitHub takes a numeric `iss`, which jose's types do not foresee.
  return new SignJWT(claims as JWTPayload).setProtectedHeader({ alg, typ: 'JWT' }).sign(key);
}

/** A fresh Ed25519 public key in OpenSSH format, as a deploy key is registered. */
export function sshPublicKey(): string {
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return sshpk.parsePrivateKey(pem, 'pem').toPublic().toString('ssh');
}
