// Checks bodies against Gitea's own swagger description (test/fixtures/gitea-swagger.v1.json).
import { readFileSync } from 'node:fs';
import { Ajv, type AnySchemaObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { expect } from 'vitest';

interface SwaggerDocument {
  info: { version: string };
  paths: Record<string, Record<string, { responses: Record<string, { $ref?: string }> }>>;
  responses: Record<string, { schema?: AnySchemaObject }>;
  definitions: Record<string, AnySchemaObject & { properties: Record<string, unknown> }>;
}

export const GITEA_SWAGGER_PATH = new URL('../fixtures/gitea-swagger.v1.json', import.meta.url);
export const giteaSwagger = JSON.parse(readFileSync(GITEA_SWAGGER_PATH, 'utf8')) as SwaggerDocument;

// Swagger 2.0 carries `x-go-*` annotations and `example`; they are no validation keywords.
const ajv = new Ajv({ allErrors: true, strict: false });
addFormats.default(ajv);
ajv.addSchema({ $id: 'gitea', definitions: giteaSwagger.definitions });

/** Points `#/definitions/…` references into the document registered as `gitea`. */
function anchored(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(anchored);
  if (schema === null || typeof schema !== 'object') return schema;
  return Object.fromEntries(
    Object.entries(schema).map(([key, value]) => [
      key,
      key === '$ref' && typeof value === 'string' ? `gitea${value}` : anchored(value),
    ]),
  );
}

const compiled = new Map<string, ValidateFunction>();
function validatorFor(key: string, schema: () => unknown): ValidateFunction {
  let validate = compiled.get(key);
  if (!validate) {
    validate = ajv.compile(anchored(schema()) as AnySchemaObject);
    compiled.set(key, validate);
  }
  return validate;
}

/** The body of the operation's documented response for `status` validates against its schema. */
export function expectGiteaResponse(path: string, method: string, status: number, body: unknown): void {
  const operation = giteaSwagger.paths[path]?.[method];
  expect(operation, `${method} ${path} is in the swagger description`).toBeDefined();
  const reference = operation!.responses[String(status)]?.$ref;
  expect(reference, `${method} ${path} documents ${status}`).toBeDefined();
  const response = giteaSwagger.responses[reference!.replace('#/responses/', '')]!;
  if (!response.schema) return;
  const validate = validatorFor(reference!, () => response.schema);
  expect(validate(body), ajv.errorsText(validate.errors)).toBe(true);
}

/** The body validates against a definition (errors use `APIError`, which no response references). */
export function expectGiteaDefinition(name: string, body: unknown): void {
  const validate = validatorFor(name, () => ({ $ref: `#/definitions/${name}` }));
  expect(validate(body), ajv.errorsText(validate.errors)).toBe(true);
}

/** The documented properties of a definition. */
export const propertiesOf = (name: string) => Object.keys(giteaSwagger.definitions[name]!.properties).sort();
