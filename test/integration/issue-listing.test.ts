// A caller finds its keys again: by id, filtered by provider, repository, job and status, newest
// first in cursor pages; another caller's keys stay invisible.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { expectProblem } from '../support/issue-checks.ts';
import { eventually, type Harness, startHarness } from '../support/service-harness.ts';

let harness: Harness;
/** The caller's keys in the order they were issued. */
const issued: { id: string; provider: string; repository: string; jobId: string }[] = [];
let othersKey: { id: string };
let revokedId: string;

const REQUESTS = [
  { provider: 'github', repository: 'acme/models', jobId: 'list-a' },
  { provider: 'gitlab', repository: 'acme/models', jobId: 'list-a' },
  { provider: 'github', repository: 'acme/datasets', jobId: 'list-a' },
  { provider: 'github', repository: 'acme/models', jobId: 'list-b' },
  { provider: 'gitlab', repository: 'acme/datasets', jobId: 'list-c' },
  { provider: 'github', repository: 'acme/datasets', jobId: 'list-c' },
];

beforeAll(async () => {
  harness = await startHarness();
  for (const body of REQUESTS) {
    const answer = await harness.api('POST', '/v1/keys', { body: { ...body, ttlSeconds: 600 } });
    expect(answer.status, answer.text).toBe(201);
    issued.push(answer.body);
  }
  const other = await harness.api('POST', '/v1/keys', {
    body: { provider: 'github', repository: 'acme/models', jobId: 'list-other', ttlSeconds: 600 },
    token: harness.tokens['other-ci']!,
  });
  expect(other.status, other.text).toBe(201);
  othersKey = other.body;
  revokedId = issued[3]?.id as string;
  expect((await harness.api('DELETE', `/v1/keys/${revokedId}`)).status).toBe(202);
  await eventually(
    async () => (await harness.api('GET', `/v1/keys/${revokedId}`)).body.status === 'revoked',
    {
      what: 'the deleted key to be revoked',
    },
  );
});
afterAll(async () => {
  await harness?.close();
});

const ids = (items: { id: string }[]) => items.map((item) => item.id);
const newestFirst = (keys: { id: string }[]) => ids([...keys].reverse());

async function list(query: string) {
  const answer = await harness.api('GET', `/v1/keys${query ? `?${query}` : ''}`);
  expect(answer.status, answer.text).toBe(200);
  return answer.body as { items: { id: string; status: string }[]; nextCursor: string | null };
}

it('lists the caller’s own keys, newest first, without anyone else’s', async () => {
  const page = await list('');
  expect(ids(page.items)).toEqual(newestFirst(issued));
  expect(ids(page.items)).not.toContain(othersKey.id);
  expect(page.nextCursor).toBeNull();
  expect(JSON.stringify(page)).not.toContain('PRIVATE KEY');
});

it.each([
  ['provider', 'provider=gitlab', (k: (typeof issued)[number]) => k.provider === 'gitlab'],
  [
    'repository',
    'repository=acme%2Fdatasets',
    (k: (typeof issued)[number]) => k.repository === 'acme/datasets',
  ],
  ['jobId', 'jobId=list-a', (k: (typeof issued)[number]) => k.jobId === 'list-a'],
  [
    'provider and repository',
    'provider=github&repository=acme%2Fmodels',
    (k: (typeof issued)[number]) => k.provider === 'github' && k.repository === 'acme/models',
  ],
])('filters by %s', async (_what, query, keep) => {
  const page = await list(query);
  const expected = newestFirst(issued.filter(keep));
  expect(expected.length).toBeGreaterThan(0);
  expect(ids(page.items)).toEqual(expected);
});

it('filters by status', async () => {
  expect(ids((await list('status=revoked')).items)).toEqual([revokedId]);
  const active = await list('status=active');
  expect(ids(active.items)).toEqual(newestFirst(issued.filter((key) => key.id !== revokedId)));
  expect(active.items.every((item) => item.status === 'active')).toBe(true);
  expect((await list('status=failed')).items).toEqual([]);
});

it('pages newest first with a cursor, three pages of two, the last without a next cursor', async () => {
  const first = await list('limit=2');
  expect(first.nextCursor).toEqual(expect.any(String));
  const second = await list(`limit=2&cursor=${encodeURIComponent(first.nextCursor as string)}`);
  expect(second.nextCursor).toEqual(expect.any(String));
  const third = await list(`limit=2&cursor=${encodeURIComponent(second.nextCursor as string)}`);
  expect(third.nextCursor).toBeNull();
  expect([first, second, third].map((page) => page.items.length)).toEqual([2, 2, 2]);
  expect([...ids(first.items), ...ids(second.items), ...ids(third.items)]).toEqual(newestFirst(issued));
});

it('keeps a filter across pages', async () => {
  const first = await list('provider=github&limit=2');
  const second = await list(
    `provider=github&limit=2&cursor=${encodeURIComponent(first.nextCursor as string)}`,
  );
  expect([...ids(first.items), ...ids(second.items)]).toEqual(
    newestFirst(issued.filter((key) => key.provider === 'github')),
  );
  expect(second.nextCursor).toBeNull();
});

it('refuses a cursor it did not hand out with 400', async () => {
  const forged = Buffer.from(JSON.stringify(['yesterday', 'not-an-id'])).toString('base64url');
  for (const cursor of [forged, Buffer.from('[]').toString('base64url')]) {
    const answer = await harness.api('GET', `/v1/keys?cursor=${encodeURIComponent(cursor)}`);
    expectProblem(answer, 400, 'invalid-cursor', /cursor/);
  }
  // Not even base64url: the contract's own pattern refuses it.
  expectProblem(await harness.api('GET', '/v1/keys?cursor=garbage!!'), 400, 'validation-failed', /cursor/);
});

it('answers another caller’s key with 404, the same as a key that does not exist', async () => {
  const answer = await harness.api('GET', `/v1/keys/${othersKey.id}`);
  expectProblem(answer, 404, 'key-not-found', new RegExp(othersKey.id));
  const own = await harness.api('GET', `/v1/keys/${othersKey.id}`, { token: harness.tokens['other-ci']! });
  expect(own.status).toBe(200);
  expect(own.body.id).toBe(othersKey.id);
  const revoke = await harness.api('DELETE', `/v1/keys/${othersKey.id}`);
  expectProblem(revoke, 404, 'key-not-found', undefined);
  expect(
    (await harness.api('GET', `/v1/keys/${othersKey.id}`, { token: harness.tokens['other-ci']! })).body
      .status,
  ).toBe('active');
});

it("lets an auditor narrow the list to one caller's keys, and never widens an issuer's", async () => {
  const auditor = harness.tokens.auditor!;
  const others = await harness.api('GET', '/v1/keys?caller=token:other-ci', { token: auditor });
  expect(others.status).toBe(200);
  expect(others.body.items.map((key: { id: string }) => key.id)).toEqual([othersKey.id]);
  expect(others.body.items[0].caller).toBe('token:other-ci');

  const mine = await harness.api('GET', '/v1/keys?caller=token:ci&limit=200', { token: auditor });
  expect(mine.body.items).toHaveLength(REQUESTS.length);

  // An issuer asking for another caller's keys still sees only its own.
  const widened = await harness.api('GET', '/v1/keys?caller=token:other-ci&limit=200');
  expect(widened.status).toBe(200);
  expect(widened.body.items.map((key: { caller: string }) => key.caller)).toEqual(
    Array(REQUESTS.length).fill('token:ci'),
  );
});
