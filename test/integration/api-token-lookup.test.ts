// Requests that arrive together look their tokens up with one query, and each still gets exactly
// its own answer: a live token its row, a revoked, expired or unknown one nothing.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createApiTokens } from '../../src/auth/api-tokens.ts';
import { systemClock } from '../../src/time.ts';
import { countingDb, createTestDatabase, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;
let counter: { statements: number };
let tokens: ReturnType<typeof createApiTokens>;

beforeAll(async () => {
  database = await createTestDatabase();
  const counting = countingDb(database, (sql) => sql.startsWith('select'));
  counter = counting.counter;
  tokens = createApiTokens(counting.db, systemClock);
});
afterAll(async () => {
  await database?.drop();
});

it('answers many authentications asked for together with few lookups, each with its own token', async () => {
  const made = await Promise.all(
    Array.from({ length: 12 }, (_, i) => tokens.create({ name: `ci-${i}`, role: 'issuer', actor: 'admin' })),
  );
  const expired = await tokens.create({
    name: 'expired',
    role: 'issuer',
    actor: 'admin',
    expiresAt: new Date(Date.now() - 1_000),
  });
  await tokens.revoke('ci-3', 'admin');
  counter.statements = 0;
  const answers = await Promise.all([
    ...made.map((token) => tokens.authenticate(token.token)),
    tokens.authenticate(expired.token),
    tokens.authenticate('dkr_unknown'),
    tokens.authenticate(made[5]!.token),
  ]);
  expect(answers.slice(0, 12).map((row) => row?.name)).toEqual(
    made.map((_, i) => (i === 3 ? undefined : `ci-${i}`)),
  );
  expect(answers.slice(12, 14)).toEqual([undefined, undefined]);
  expect(answers[14]?.name).toBe('ci-5');
  // Asked for together, they go in one query, or two if a lookup was already under way.
  expect(counter.statements).toBeLessThanOrEqual(3);
});

it('refuses a token revoked before the request, even while another lookup is under way', async () => {
  const { token } = await tokens.create({ name: 'short-lived', role: 'issuer', actor: 'admin' });
  expect((await tokens.authenticate(token))?.name).toBe('short-lived');
  const other = await tokens.create({ name: 'other', role: 'issuer', actor: 'admin' });
  const underWay = tokens.authenticate(other.token);
  await tokens.revoke('short-lived', 'admin');
  const [stillLive, revoked] = await Promise.all([underWay, tokens.authenticate(token)]);
  expect(stillLive?.name).toBe('other');
  expect(revoked).toBeUndefined();
});
