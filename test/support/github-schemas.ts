// GitHub's own schemas for the Actions REST routes, the hook routes and the workflow webhooks
// (cut from @octokit/openapi and @octokit/openapi-webhooks into test/fixtures), compiled once.
import { readFileSync } from 'node:fs';
import { Ajv, type AnySchemaObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { expect } from 'vitest';

type Operation = {
  responses: Record<string, { content?: { 'application/json': { schema: AnySchemaObject } } }>;
};
const read = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8'));
const rest = read('github-actions-hooks.openapi.json') as {
  paths: Record<string, Record<string, Operation>>;
};
const webhooks = read('github-workflow-webhooks.openapi.json') as {
  webhooks: Record<string, { headers: Array<{ name: string; required: boolean }>; schema: AnySchemaObject }>;
};

// OpenAPI 3.0 writes `nullable: true` next to `type`; JSON Schema wants `null` among the types.
function toJsonSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(toJsonSchema);
  if (schema === null || typeof schema !== 'object') return schema;
  const { nullable, ...rest } = schema as Record<string, unknown>;
  const out = Object.fromEntries(Object.entries(rest).map(([key, value]) => [key, toJsonSchema(value)]));
  if (nullable === true && typeof out.type === 'string') out.type = [out.type, 'null'];
  if (nullable === true && Array.isArray(out.enum)) out.enum = [...out.enum, null];
  return out;
}

const ajv = new Ajv({ allErrors: true, strict: false });
addFormats.default(ajv);
const compiled = new Map<AnySchemaObject, ValidateFunction>();

export function expectSchema(schema: AnySchemaObject, body: unknown): void {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile(toJsonSchema(schema) as AnySchemaObject);
    compiled.set(schema, validate);
  }
  expect(validate(body), ajv.errorsText(validate.errors)).toBe(true);
}

export function restSchema(path: string, method: string, status: string): AnySchemaObject {
  const schema = rest.paths[path]?.[method]?.responses[status]?.content?.['application/json'].schema;
  if (!schema) throw new Error(`no schema for ${method} ${path} ${status}`);
  return schema;
}

/**
 * Whether GitHub documents this method and path (`x` standing for each parameter) among the Actions
 * and hook routes; those are walked by the Actions suites, not by the deploy-key conformance walk.
 */
export function isDocumentedActionsOrHooksRoute(method: string, path: string): boolean {
  return Object.entries(rest.paths).some(
    ([template, operations]) =>
      operations[method.toLowerCase()] !== undefined &&
      new RegExp(`^${template.replace(/\{\w+\}/g, '[^/]+')}$`).test(path),
  );
}

/** The schema of a webhook payload, e.g. `('workflow_job', 'completed')` or `('ping')`. */
export function webhookSchema(event: string, action?: string): AnySchemaObject {
  const name = [event, action].filter(Boolean).join('-').replaceAll('_', '-');
  const found = webhooks.webhooks[name];
  if (!found) throw new Error(`no webhook schema for ${name}`);
  return found.schema;
}

/** The headers GitHub documents as always sent with this webhook. */
export function requiredWebhookHeaders(event: string, action?: string): string[] {
  const name = [event, action].filter(Boolean).join('-').replaceAll('_', '-');
  return (webhooks.webhooks[name]?.headers ?? [])
    .filter((header) => header.required)
    .map((header) => header.name);
}

/**
 * Paths of fields the schema does not document ("nothing GitHub does not send"). Descends into
 * objects whose schema lists properties, through allOf/anyOf/oneOf and array items.
 */
export function undocumentedFields(schema: AnySchemaObject, body: unknown, path = '$'): string[] {
  if (body === null || typeof body !== 'object') return [];
  if (Array.isArray(body)) {
    return schema.items
      ? body.flatMap((item, index) => undocumentedFields(schema.items, item, `${path}[${index}]`))
      : [];
  }
  const variants = [schema, ...(schema.allOf ?? []), ...(schema.anyOf ?? []), ...(schema.oneOf ?? [])].filter(
    (variant: AnySchemaObject) => variant && typeof variant === 'object',
  );
  const properties: Record<string, AnySchemaObject> = {};
  for (const variant of variants) {
    for (const [key, value] of Object.entries(variant.properties ?? {}))
      properties[key] ??= value as AnySchemaObject;
  }
  if (Object.keys(properties).length === 0) return [];
  return Object.entries(body).flatMap(([key, value]) =>
    properties[key] ? undocumentedFields(properties[key], value, `${path}.${key}`) : [`${path}.${key}`],
  );
}
