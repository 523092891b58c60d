// A property-based tester driven by openapi.yaml: for every operation the contract describes, any
// string in any of its parameters (path, query, header, and each body field) gets an answer the
// contract allows: never a 5xx, a documented status, an RFC 9457 problem for every error, and the
// headers the contract declares.
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse } from 'yaml';
import { type Harness, startHarness } from '../support/service-harness.ts';

interface Parameter {
  in: 'path' | 'query' | 'header';
  name: string;
  required?: boolean;
  schema?: { enum?: unknown[]; anyOf?: { enum?: unknown[] }[] };
}
interface Operation {
  method: string;
  path: string;
  tags: string[];
  parameters: Parameter[];
  bodyFields: string[];
  statuses: string[];
}

const spec = parse(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as {
  paths: Record<string, Record<string, Record<string, unknown>>>;
};
const OPERATIONS: Operation[] = Object.entries(spec.paths).flatMap(([path, item]) =>
  Object.entries(item).map(([method, op]) => {
    const body = (op.requestBody as { content?: Record<string, { schema?: { properties?: object } }> })
      ?.content?.['application/json']?.schema;
    return {
      method: method.toUpperCase(),
      path,
      tags: (op.tags as string[]) ?? [],
      parameters: (op.parameters as Parameter[]) ?? [],
      bodyFields: Object.keys(body?.properties ?? {}),
      statuses: Object.keys(op.responses as object),
    };
  }),
);

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness();
}, 60_000);
afterAll(async () => {
  await harness?.close();
});

// Values the contract's own patterns let through and the database then chokes on, odd instants,
// hostile cursors, and anything at all (every code point, lone surrogates, NUL).
const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const tricky = fc.constantFrom(
  '\u0000',
  'a\u0000b',
  '\u001b[2J',
  '\ud800',
  '2020-01-01T23:59:60Z',
  '2020-02-30T00:00:00Z',
  '-271821-04-20T00:00:00.000Z',
  '9999999999999999999',
  '9223372036854775808',
  '9223372036854775807',
  '0',
  '-1',
  '',
  ' ',
  'acme/models',
  'ACME/Models',
  'github',
  '00000000-0000-0000-0000-000000000000',
  cursorOf(['-271821-04-20T00:00:00.000Z', '00000000-0000-0000-0000-000000000000']),
  cursorOf(['2026-01-01T00:00:00.000Z', '-'.repeat(36)]),
  cursorOf([1, 2]),
  cursorOf({}),
  'ci',
  'true',
);
const anyString = fc.oneof(
  { weight: 3, arbitrary: tricky },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.string({ maxLength: 8 }), tricky, fc.string({ maxLength: 8 }))
      .map((p) => p.join('')),
  },
);
/** Raw bytes, so invalid UTF-8 (%FF, a cut sequence) reaches the server too. */
const anyBytes = fc.uint8Array({ maxLength: 24 }).map((bytes) => ({ bytes: Buffer.from(bytes) }));

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
function percentEncode(value: string | { bytes: Buffer }): string {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value.bytes;
  return [...bytes]
    .map((byte) => {
      const char = String.fromCharCode(byte);
      return UNRESERVED.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
}

const enumOf = (parameter: Parameter): unknown[] =>
  parameter.schema?.enum ?? parameter.schema?.anyOf?.flatMap((one) => one.enum ?? []) ?? [];

const parameterValue = (parameter: Parameter) =>
  fc.oneof(
    { weight: 4, arbitrary: anyString },
    { weight: 1, arbitrary: anyBytes },
    {
      weight: 1,
      arbitrary: enumOf(parameter).length ? fc.constantFrom(...enumOf(parameter).map(String)) : anyString,
    },
  );
// Only what node's own client agrees to send as a header value.
const headerValue = anyString
  .map((value) => value.replace(/[^\t\x20-\x7e\x80-\xff]/g, '').trim())
  .filter((value) => value.length > 0);
const bodyValue = fc.oneof(anyString, fc.integer(), fc.double(), fc.boolean(), fc.constant(null));

interface Sent {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

// A value each parameter accepts, so that a request fails only where the arbitrary value is: a bug
// behind one parameter is found only when every other one passes validation.
const VALID: Record<string, fc.Arbitrary<unknown>> = {
  provider: fc.constantFrom('github', 'gitlab'),
  repository: fc.constantFrom('acme/models', 'acme/datasets'),
  jobId: fc.constantFrom('fuzz-job', 'fuzz-job-2'),
  keyId: fc.uuid(),
  id: fc.oneof(fc.uuid(), fc.constant('fuzz-token')),
  caller: fc.constant('token:ci'),
  actor: fc.constant('token:ci'),
  action: fc.constant('key.issued'),
  from: fc.constant('2020-01-01T00:00:00Z'),
  to: fc.constant('2099-01-01T00:00:00.000Z'),
  limit: fc.constant('10'),
  order: fc.constantFrom('asc', 'desc'),
  format: fc.constantFrom('ndjson', 'csv'),
  status: fc.constantFrom('active', 'revoked'),
  overdue: fc.constantFrom('true', 'false'),
  'idempotency-key': fc.constant('fuzz-1'),
  ttlSeconds: fc.constant(600),
  delivery: fc.constantFrom('vault', 'wrapped'),
  name: fc.constant('fuzz-token'),
  role: fc.constant('auditor'),
  expiresInSeconds: fc.constant(3_600),
};

interface Slot {
  key: string;
  place: 'path' | 'query' | 'header' | 'body';
  name: string;
  required: boolean;
  arbitrary: fc.Arbitrary<unknown>;
}

function slotsOf(operation: Operation): Slot[] {
  return [
    ...operation.parameters.map((parameter) => ({
      key: `${parameter.in}:${parameter.name}`,
      place: parameter.in,
      name: parameter.name,
      required: parameter.required === true,
      arbitrary: parameter.in === 'header' ? headerValue : parameterValue(parameter),
    })),
    ...operation.bodyFields.map((name) => ({
      key: `body:${name}`,
      place: 'body' as const,
      name,
      required: false,
      arbitrary: bodyValue,
    })),
  ];
}

/** One slot gets any value; every other one a valid value or (when optional) none. */
function requestFor(operation: Operation): fc.Arbitrary<Sent> {
  const slots = slotsOf(operation);
  if (slots.length === 0) return fc.constant({ method: operation.method, path: operation.path, headers: {} });
  const others = Object.fromEntries(
    slots.map((slot) => {
      const valid = VALID[slot.name] ?? fc.constant(undefined);
      return [slot.key, slot.required ? valid : fc.option(valid, { nil: undefined })];
    }),
  );
  return fc
    .record({ target: fc.constantFrom(...slots), others: fc.record(others) })
    .chain(({ target, others: values }) =>
      target.arbitrary.map((value) => build(operation, slots, { ...values, [target.key]: value })),
    );
}

function build(operation: Operation, slots: Slot[], values: Record<string, unknown>): Sent {
  let path = operation.path;
  const query: string[] = [];
  const headers: Record<string, string> = {};
  const body: Record<string, unknown> = {};
  for (const slot of slots) {
    const value = values[slot.key];
    if (value === undefined) continue;
    if (slot.place === 'path') path = path.replace(`{${slot.name}}`, percentEncode(value as string));
    if (slot.place === 'query') query.push(`${slot.name}=${percentEncode(value as string)}`);
    if (slot.place === 'header') headers[slot.name] = value as string;
    if (slot.place === 'body') body[slot.name] = value;
  }
  return {
    method: operation.method,
    path: query.length ? `${path}?${query.join('&')}` : path,
    headers,
    ...(operation.bodyFields.length ? { body: JSON.stringify(body) } : {}),
  };
}

function tokenFor(operation: Operation): string | undefined {
  const tokens = harness.tokens;
  if (operation.tags.includes('operations')) return undefined;
  if (operation.tags.includes('audit')) return tokens.auditor;
  if (operation.tags.includes('tokens')) return tokens.admin;
  return tokens.ci;
}

function send(sent: Sent, token: string | undefined) {
  const url = new URL(harness.service.url);
  const headers: Record<string, string> = {
    ...sent.headers,
    ...(token ? { authorization: `Bearer ${token}` } : {}),
    ...(sent.body
      ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(sent.body)) }
      : {}),
  };
  return new Promise<{ status: number; headers: Record<string, unknown>; text: string }>(
    (resolve, reject) => {
      const outgoing = httpRequest(
        { host: url.hostname, port: url.port, method: sent.method, path: sent.path, headers, agent: false },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () =>
            resolve({
              status: response.statusCode ?? 0,
              headers: response.headers,
              text: Buffer.concat(chunks).toString(),
            }),
          );
          response.on('error', reject);
        },
      );
      outgoing.on('error', reject);
      outgoing.end(sent.body);
    },
  );
}

/** Every way the answer breaks the contract; empty when it keeps it. */
function breaches(operation: Operation, answer: Awaited<ReturnType<typeof send>>): string[] {
  const found: string[] = [];
  if (answer.status >= 500) found.push(`status ${answer.status}`);
  if (!operation.statuses.includes(String(answer.status))) found.push(`undocumented status ${answer.status}`);
  if (!answer.headers['x-request-id']) found.push('no x-request-id');
  if (
    answer.status >= 400 &&
    !String(answer.headers['content-type']).startsWith('application/problem+json')
  ) {
    found.push(`error as ${String(answer.headers['content-type'])}`);
  }
  if (answer.status === 429 && !answer.headers['retry-after']) found.push('429 without retry-after');
  if (answer.status < 300 && operation.statuses.includes('429') && !answer.headers['x-ratelimit-limit']) {
    found.push('2xx of a budgeted operation without x-ratelimit-limit');
  }
  return found;
}

// The harness's own callers must survive the run: revoking one would turn the rest into 401s.
const HARNESS_CALLERS = new Set(['ci', 'other-ci', 'auditor', 'admin']);
function revokesHarnessCaller(operation: Operation, sent: Sent): boolean {
  if (operation.method !== 'DELETE' || operation.path !== '/v1/admin/tokens/{id}') return false;
  try {
    return HARNESS_CALLERS.has(decodeURIComponent(sent.path.split('/').at(-1) ?? ''));
  } catch {
    return false;
  }
}

it('covers every operation in openapi.yaml', () => {
  expect(OPERATIONS.length).toBeGreaterThanOrEqual(15);
  expect(OPERATIONS.map((op) => `${op.method} ${op.path}`)).toEqual(
    expect.arrayContaining([
      'GET /v1/keys',
      'POST /v1/keys',
      'GET /v1/audit/events',
      'DELETE /v1/admin/tokens/{id}',
    ]),
  );
});

it.each(OPERATIONS.map((operation) => [`${operation.method} ${operation.path}`, operation] as const))(
  '%s answers any string in any parameter as its contract says',
  async (_name, operation) => {
    await fc.assert(
      fc.asyncProperty(requestFor(operation), async (sent) => {
        if (revokesHarnessCaller(operation, sent)) return;
        const answer = await send(sent, tokenFor(operation));
        const found = breaches(operation, answer);
        if (found.length > 0) {
          throw new Error(
            `${found.join('; ')}\nrequest: ${JSON.stringify(sent)}\nanswer: ${answer.text.slice(0, 300)}`,
          );
        }
      }),
      { numRuns: 60 },
    );
  },
  60_000,
);
