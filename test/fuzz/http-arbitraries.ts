// Generators of hostile-but-possible client input for the HTTP API.
import fc from 'fast-check';

// Header values node accepts: tab, printable ASCII and the latin-1 upper half.
const headerChar = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
  { weight: 1, arbitrary: fc.constantFrom(0x09, 0x80, 0xa0, 0xe9, 0xff) },
);
export const headerValue = (maxLength = 80) =>
  fc
    .array(headerChar, { maxLength })
    .map((codes) => String.fromCharCode(...codes).trim())
    .filter((value) => value.length > 0);

const tricky = fc.constantFrom(
  '..',
  '../..',
  '%2F',
  '%2e%2e',
  '..%2F..%2Fetc%2Fpasswd',
  '\u0000',
  '%00',
  'ü',
  '😀',
  '\u202e',
  '\uffff',
  '\ud800',
  ' ',
  '',
  '"',
  "'; drop table deploy_keys;--",
  `$${'{'}jndi:ldap://x}`,
  '{{7*7}}',
  '<script>',
  '\r\n',
  'acme/models',
  'acme/../models',
  '*',
  '**',
);
const trickyString = fc.oneof(
  tricky,
  fc.tuple(fc.string({ maxLength: 20 }), tricky, fc.string({ maxLength: 20 })).map((p) => p.join('')),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ maxLength: 600 }),
);
const hugeNumber = fc.constantFrom(
  ...[1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 2 ** 31, 2 ** 63, -1, 0, 0.5, -0.0001, 1.5, 59.999, 1e-300],
);
const weirdValue: fc.Arbitrary<unknown> = fc.oneof(
  trickyString,
  hugeNumber,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 10 }), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
  fc.jsonValue({ maxDepth: 4 }),
);

export const jobId = fc.stringMatching(/^[A-Za-z0-9_-][A-Za-z0-9._:-]{0,30}$/);

export const validIssueBody = fc.record(
  {
    provider: fc.constantFrom('github', 'gitlab'),
    repository: fc.constantFrom('acme/models', 'acme/datasets'),
    jobId,
    ttlSeconds: fc.integer({ min: 60, max: 3600 }),
    delivery: fc.constantFrom('vault', 'response', 'wrapped'),
  },
  { requiredKeys: ['provider', 'repository', 'jobId'] },
);

/** A valid body with one field replaced, removed, or one unknown field added. */
export const almostValidIssueBody = fc
  .tuple(
    validIssueBody,
    fc.constantFrom('provider', 'repository', 'jobId', 'ttlSeconds', 'delivery', '__extra__', '__drop__'),
    weirdValue,
    fc.constantFrom('provider', 'repository', 'jobId'),
  )
  .map(([body, field, value, dropped]) => {
    const copy: Record<string, unknown> = { ...body };
    if (field === '__drop__') delete copy[dropped];
    else if (field === '__extra__') copy.extra = value;
    else copy[field] = value;
    return copy;
  });

export const arbitraryJsonBody = fc.oneof(
  fc.jsonValue({ maxDepth: 5 }),
  fc.dictionary(fc.string({ maxLength: 16 }), weirdValue, { maxKeys: 8 }),
  fc.constant({ __proto__: { provider: 'github' } }),
  fc.constant(JSON.parse('{"__proto__":{"isAdmin":true},"constructor":{"prototype":{"x":1}}}')),
);

const contentType = fc.constantFrom(
  ...[
    'application/json; charset=utf-8|application/json; charset=utf-16|APPLICATION/JSON|application/json|',
    'application/problem+json|application/merge-patch+json|text/plain|text/json|application/xml|',
    'application/x-www-form-urlencoded|multipart/form-data; boundary=x|application/octet-stream|',
    'application/json;;;|*/*|garbage',
  ]
    .join('')
    .split('|'),
);

const rawBytes = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
  fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)),
  fc
    .constantFrom(
      '{',
      '{"provider":',
      '[]',
      'null',
      '"x"',
      '1e999999',
      '{"a":1}{"b":2}',
      '\ufeff{"provider":"github"}',
      '{"provider":"github","provider":"gitlab"}',
      'provider=github&repository=acme/models',
    )
    .map((s) => Buffer.from(s)),
  fc.integer({ min: 16 * 1024 - 4, max: 24 * 1024 }).map((n) => Buffer.from(`"${'a'.repeat(n)}"`)),
);

export interface BodyChoice {
  body?: Buffer;
  contentType?: string;
  /** The body was a valid issue request asking for the private key in the answer. */
  asksForPrivateKey: boolean;
}

export const bodyChoice: fc.Arbitrary<BodyChoice> = fc.oneof(
  validIssueBody.map((b) => ({
    body: Buffer.from(JSON.stringify(b)),
    contentType: 'application/json',
    asksForPrivateKey: b.delivery === 'response',
  })),
  almostValidIssueBody.map((b) => ({
    body: Buffer.from(JSON.stringify(b)),
    contentType: 'application/json',
    asksForPrivateKey: b.delivery === 'response',
  })),
  arbitraryJsonBody.map((b) => ({
    body: Buffer.from(JSON.stringify(b) ?? 'null'),
    contentType: 'application/json',
    asksForPrivateKey: false,
  })),
  fc.tuple(rawBytes, fc.option(contentType, { nil: undefined })).map(([body, type]) => ({
    body,
    ...(type ? { contentType: type } : {}),
    asksForPrivateKey: false,
  })),
  fc.constant({ asksForPrivateKey: false }),
);

const UUID_LIKE = fc.oneof(
  fc.uuid(),
  fc.uuid().map((u) => u.toUpperCase()),
  fc.constant('00000000-0000-0000-0000-000000000000'),
);
const rawSegmentChar = fc.constantFrom(
  ..."abcXYZ019-._~!$&'()*+,;=:@".split(''),
  '%2F',
  '%2f',
  '%2e',
  '%00',
  '%25',
  '%C3%BC',
  '%FF',
  '%',
  '%zz',
  '%F0%9F%98%80',
);
export const segment = fc.oneof(
  { weight: 3, arbitrary: fc.array(rawSegmentChar, { maxLength: 20 }).map((c) => c.join('')) },
  { weight: 2, arbitrary: UUID_LIKE },
  { weight: 1, arbitrary: fc.constantFrom('..', '.', '', '%2e%2e', 'ci', 'keys', 'index.html', 'app.js') },
  { weight: 1, arbitrary: fc.integer({ min: 200, max: 9000 }).map((n) => 'a'.repeat(n)) },
  { weight: 1, arbitrary: jobId },
);

const queryValue = fc.oneof(
  fc.array(rawSegmentChar, { maxLength: 12 }).map((c) => c.join('')),
  fc.constantFrom('true', 'false', '1', '0', '-1', '999999999999999999999', 'asc', 'desc', 'csv', 'active'),
  fc.constantFrom('2026-01-01T00:00:00Z', 'not-a-date', '%00', 'abc%2F..'),
);
const queryName = fc.constantFrom(
  ...'limit cursor status overdue jobId provider repository from to keyId order format actor action'.split(
    ' ',
  ),
  ...['__proto__', 'constructor', 'x', ''],
);
const queryString = fc
  .array(fc.tuple(queryName, queryValue), { maxLength: 6 })
  .chain((pairs) =>
    fc.constantFrom('?', '?&', '??').map((lead) => `${lead}${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`),
  );

/** Paths under the API with routes' shapes, odd segments, traversal and query strings. */
export const apiPath = fc
  .tuple(
    fc.oneof(
      fc.constantFrom(
        '/v1/keys',
        '/v1/keys/',
        '/v1/admin/tokens',
        '/v1/audit/events',
        '/v1/audit/events/export',
        '/v1/audit/verify',
        '/v1/audit/checkpoints/latest',
        '/v1',
        '/v1/',
        '//v1/keys',
        '/v1//keys',
        '/V1/KEYS',
        '/v1/keys/../admin/tokens',
        '/v1/%6beys',
        '/ui/..%2F..%2Fpackage.json',
        '/healthz',
        '/readyz',
      ),
      segment.map((s) => `/v1/keys/${s}`),
      segment.map((s) => `/v1/jobs/${s}/complete`),
      segment.map((s) => `/v1/admin/tokens/${s}`),
      segment.map((s) => `/ui/${s}`),
      fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => `/v1/${s.join('/')}`),
    ),
    fc.option(queryString, { nil: '' }),
  )
  .map(([path, query]) => `${path}${query}`);

export const method = fc.constantFrom(
  'GET',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'HEAD',
  'OPTIONS',
  'GET',
  'POST',
);

const base64url = (maxLength: number) => fc.stringMatching(new RegExp(`^[A-Za-z0-9_-]{0,${maxLength}}$`));
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Authorization headers: none, garbage, JWT-shaped, `dkr_`-shaped, real tokens with suffixes. */
export const authorization = (tokens: string[]) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...tokens).map((t) => `Bearer ${t}`) },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: headerValue() },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom(...tokens), headerValue(20), fc.constantFrom('', ' ', 'bearer ', 'Basic '))
        .map(([t, suffix, scheme]) => `${scheme || 'Bearer '}${t}${suffix}`),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.oneof(
            base64url(60),
            fc.constantFrom(
              b64({ alg: 'RS256', kid: 'x' }),
              b64({ alg: 'none' }),
              b64({ alg: 'HS256' }),
              b64({ alg: 'EdDSA', jku: 'http://127.0.0.1:1/' }),
            ),
          ),
          fc.oneof(base64url(120), fc.jsonValue({ maxDepth: 2 }).map(b64)),
          base64url(90),
        )
        .map((parts) => `Bearer ${parts.join('.')}`),
    },
    {
      weight: 1,
      arbitrary: fc.oneof(base64url(60), headerValue(40)).map((s) => `Bearer dkr_${s}`),
    },
    { weight: 1, arbitrary: fc.integer({ min: 8190, max: 9000 }).map((n) => `Bearer dkr_${'A'.repeat(n)}`) },
  );

export const idempotencyKey = fc.option(
  fc.oneof(headerValue(40), fc.stringMatching(/^[\x21-\x7e]{1,20}$/), fc.constant('x'.repeat(300))),
  { nil: undefined },
);
export const requestId = fc.option(fc.oneof(headerValue(80), fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/)), {
  nil: undefined,
});
