// GitHub's own OpenAPI description (test/fixtures/github-rest.openapi.json) as a judge of requests
// sent to the GitHub stand-in and of the answers it gives.
import { readFileSync } from 'node:fs';
import { Ajv, type AnySchemaObject } from 'ajv';
import addFormats from 'ajv-formats';
import { expect } from 'vitest';
import type { SeenRequest } from '../../sandbox/github/stand-in.ts';

interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema: AnySchemaObject;
}
interface Operation {
  operationId: string;
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content: Record<string, { schema: AnySchemaObject }> };
  responses: Record<
    string,
    {
      headers?: Record<string, { schema: AnySchemaObject }>;
      content?: Record<string, { schema: AnySchemaObject }>;
    }
  >;
}

const spec = JSON.parse(
  readFileSync(new URL('../fixtures/github-rest.openapi.json', import.meta.url), 'utf8'),
) as { paths: Record<string, Record<string, Operation>> };

// GitHub's description uses formats of its own (`timestamp`, …): only standard ones are checked.
const ajv = new Ajv({ allErrors: true, strict: false, logger: false });
addFormats.default(ajv);

function check(schema: AnySchemaObject, value: unknown, what: string) {
  const validate = ajv.compile(schema);
  expect(validate(value), `${what}: ${ajv.errorsText(validate.errors)}`).toBe(true);
}

const ENTERPRISE_PREFIX = '/api/v3';
const templates = Object.keys(spec.paths).map((template) => ({
  template,
  pattern: new RegExp(`^${template.replace(/\{(\w+)\}/g, '(?<$1>[^/]+)')}$`),
}));

/** The documented operation for a method and path (a GitHub Enterprise `/api/v3` prefix dropped). */
export function operationFor(method: string, pathname: string) {
  const path = pathname.startsWith(`${ENTERPRISE_PREFIX}/`)
    ? pathname.slice(ENTERPRISE_PREFIX.length)
    : pathname;
  const normalized = path === ENTERPRISE_PREFIX || path === '' ? '/' : path.replace(/(.)\/$/, '$1');
  for (const { template, pattern } of templates) {
    const match = pattern.exec(normalized);
    const operation = match ? spec.paths[template]?.[method.toLowerCase()] : undefined;
    if (match && operation) return { template, operation, params: match.groups ?? {} };
  }
  return undefined;
}

export const documentedOperations = () =>
  Object.entries(spec.paths).flatMap(([template, methods]) =>
    Object.keys(methods).map((method) => `${method.toUpperCase()} ${template}`),
  );

function coerce(value: string, schema: AnySchemaObject): unknown {
  if (schema.type === 'integer' || schema.type === 'number') return Number(value);
  if (schema.type === 'boolean') return value === 'true';
  return value;
}

/** The request is one GitHub documents: known operation, parameters and body as its schemas say. */
export function expectDocumentedRequest(seen: SeenRequest) {
  const url = new URL(seen.url, 'http://github.invalid');
  const found = operationFor(seen.method, url.pathname);
  const what = `${seen.method} ${url.pathname}`;
  expect(found, `${what} is an operation of GitHub's REST API`).toBeDefined();
  const { operation, params } = found!;
  const declared = operation.parameters ?? [];
  for (const parameter of declared) {
    const raw =
      parameter.in === 'path'
        ? decodeURIComponent(params[parameter.name] ?? '')
        : parameter.in === 'query'
          ? url.searchParams.get(parameter.name)
          : seen.headers[parameter.name.toLowerCase()];
    if (raw === null || raw === undefined || raw === '') {
      expect(parameter.required ?? false, `${what}: ${parameter.name} is required`).toBe(false);
      continue;
    }
    check(
      parameter.schema,
      coerce(String(raw), parameter.schema),
      `${what} ${parameter.in} ${parameter.name}`,
    );
  }
  for (const name of url.searchParams.keys()) {
    expect(
      declared.some((p) => p.in === 'query' && p.name === name),
      `${what}: query ${name} is documented`,
    ).toBe(true);
  }
  const body = operation.requestBody?.content['application/json']?.schema;
  if (!body) {
    expect(seen.body, `${what} takes no body`).toBeUndefined();
  } else if (seen.body !== undefined || operation.requestBody?.required) {
    check(body, seen.body, `${what} body`);
  }
  return operation.operationId;
}

/** The answer is one GitHub documents for that operation: status, JSON body and headers. */
export function expectDocumentedResponse(
  method: string,
  url: string,
  response: { status: number; headers: Headers; body: unknown },
) {
  const { pathname } = new URL(url);
  const what = `${method} ${pathname} → ${response.status}`;
  const found = operationFor(method, pathname);
  expect(found, `${method} ${pathname} is an operation of GitHub's REST API`).toBeDefined();
  const documented = found!.operation.responses[String(response.status)];
  expect(documented, `${what} is a documented status`).toBeDefined();
  const schema = documented!.content?.['application/json']?.schema;
  if (schema) check(schema, response.body, what);
  else expect(response.body, `${what} has no body`).toBeUndefined();
  for (const [name, header] of Object.entries(documented!.headers ?? {})) {
    const value = response.headers.get(name);
    // Link is only sent when there is another page.
    if (name.toLowerCase() === 'link' && value === null) continue;
    expect(value, `${what} sends ${name}`).not.toBeNull();
    check(header.schema, coerce(value!, header.schema), `${what} header ${name}`);
  }
  return found!.operation.operationId;
}
