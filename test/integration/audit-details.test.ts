// The audit chain hashes exactly what it stores: for any details a caller of appendAuditEvent can
// pass (dates, bigints, undefined, non-finite numbers, -0, any unicode including NUL and lone
// surrogates, nesting, odd keys), the row read back from Postgres hashes to its stored hash and
// holds the one normalised form that was hashed.
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { appendAuditEvent, chainHash, toAuditEvent } from '../../src/audit/audit.repository.ts';
import { walkAuditChain } from '../../src/audit/audit-verify.ts';
import { canonicalJson, toJsonValue } from '../../src/audit/canonical-json.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.constantFrom('\u0000', 'a\u0000b', '\ud800', 'x\udc00y', '\u2028', '\u007f', '"\\', '__proto__'),
);
const leaf: fc.Arbitrary<unknown> = fc.oneof(
  anyText,
  fc.double(),
  fc.constantFrom(-0, Number.NaN, Number.POSITIVE_INFINITY, 1e308, 5e-324, 2 ** 64, -(2 ** 53) - 2),
  fc.integer(),
  fc.bigInt(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.date(),
  fc.constant(new Date(Number.NaN)),
);
const details = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 4 }),
  object: fc.dictionary(fc.oneof(anyText, fc.constantFrom('__proto__', 'constructor')), tie('value'), {
    maxKeys: 4,
  }),
})).object as fc.Arbitrary<Record<string, unknown>>;

it('stores, for any details, exactly the value it hashed', async () => {
  await fc.assert(
    fc.asyncProperty(details, anyText, async (input, actor) => {
      const appended = await appendAuditEvent(database.db, { actor, action: 'test.details', details: input });
      const row = await database.db
        .selectFrom('audit_events')
        .selectAll()
        .where('seq', '=', appended.seq)
        .executeTakeFirstOrThrow();
      const stored = toAuditEvent(row);
      expect(chainHash(stored.prevHash, stored)).toBe(stored.hash);
      expect(canonicalJson(stored.details)).toBe(canonicalJson(toJsonValue(input)));
      expect(stored.details).toEqual(toJsonValue(input));
      expect(stored.actor).toBe(appended.actor);
    }),
    { numRuns: 300 },
  );
  const walk = await walkAuditChain(database.db);
  expect(walk).toMatchObject({ ok: true, badEventCount: 0 });
  expect(walk.checked).toBeGreaterThanOrEqual(300);
}, 60_000);

it('normalises dates, undefined, non-finite numbers, -0, bigints and unstorable text the same way every time', () => {
  const at = new Date('2030-01-02T03:04:05.678Z');
  expect(
    toJsonValue({
      at,
      gone: undefined,
      list: [undefined, Number.NaN, -0, 10n ** 30n],
      text: 'a\u0000b\ud800',
      '\u0000key': 1,
    }),
  ).toEqual({
    at: '2030-01-02T03:04:05.678Z',
    list: [null, null, 0, '1000000000000000000000000000000'],
    text: 'a\ufffdb\ufffd',
    '\ufffdkey': 1,
  });
  // An own "__proto__" member stays a member and never becomes the prototype.
  const odd = toJsonValue(JSON.parse('{"__proto__":{"polluted":true}}')) as Record<string, unknown>;
  expect(Object.keys(odd)).toEqual(['__proto__']);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
});
