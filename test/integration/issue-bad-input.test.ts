// Every malformed key request is refused with its own status and a problem+json body that says what
// to fix, before anything is written and before any Git host is called.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { expectProblem } from '../support/issue-checks.ts';
import { type Harness, startHarness } from '../support/service-harness.ts';

let harness: Harness;
let hostCallsBefore: number;

const hostCalls = () =>
  harness.standIns.github.api.faults.stats().total + harness.standIns.gitlab.api.faults.stats().total;

beforeAll(async () => {
  harness = await startHarness();
});
beforeEach(() => {
  hostCallsBefore = hostCalls();
});
afterEach(async () => {
  expect(hostCalls(), 'no refused request reaches a Git host').toBe(hostCallsBefore);
  const rows = await harness.database.pool.query('SELECT count(*)::int AS n FROM deploy_keys');
  expect(rows.rows[0].n, 'no refused request leaves a row').toBe(0);
});
afterAll(async () => {
  await harness?.close();
});

const valid = { provider: 'github', repository: 'acme/models', jobId: 'bad-input-1', ttlSeconds: 600 };
const post = (body: unknown, options: { headers?: Record<string, string>; token?: string | null } = {}) =>
  harness.api('POST', '/v1/keys', { body, ...options });

describe('POST /v1/keys refuses', () => {
  it('an unknown provider with 400, listing the configured ones', async () => {
    const answer = await post({ ...valid, provider: 'bitbucket' });
    expectProblem(answer, 400, 'unknown-provider', /"bitbucket".*github, gitlab, gitea/);
    expect(answer.body.providers).toEqual(['github', 'gitlab', 'gitea']);
    expect(answer.body.instance).toBe('/v1/keys');
  });

  it.each([
    ['not owner/name', 'acme', /owner\/name/],
    ['three segments on GitHub', 'acme/models/extra', /owner\/name/],
    ['a dot-dot segment', 'acme/../models', /"\." or "\.\."/],
    ['a URL-encoded slash', 'acme%2Fmodels', /URL-encoded/],
    ['a NUL', 'acme/mo\u0000dels', /control characters/],
    ['a tab', 'acme/mo\tdels', /control characters/],
    ['a newline', 'acme/models\nX-Injected: 1', /control characters/],
    ['a backslash', 'acme\\models', /backslash/],
    ['a .git suffix', 'acme/models.git', /\.git/],
    ['600 characters', `acme/${'m'.repeat(595)}`, /repository.*512/],
    ['an empty name', '', /repository/],
  ])('a repository with %s with 400', async (_what, repository, detail) => {
    const answer = await post({ ...valid, repository });
    expectProblem(answer, 400, undefined, detail);
    const printable = [...(answer.body.detail as string)].every((c) => c.charCodeAt(0) >= 0x20);
    expect(printable, 'the detail echoes no raw control character').toBe(true);
  });

  it.each([
    ['a dot-dot segment', 'group/../project', /"\." or "\.\."/],
    ['a URL-encoded slash', 'group%2Fproject', /URL-encoded/],
    ['a single segment', 'project', /GitLab project path/],
  ])('a GitLab project path with %s with 400', async (_what, repository, detail) => {
    const answer = await post({ ...valid, provider: 'gitlab', repository });
    expectProblem(answer, 400, 'invalid-repository', detail);
  });

  it.each([
    ['a space', 'job 1'],
    ['a slash', 'job/1'],
    ['129 characters', 'j'.repeat(129)],
    ['nothing', ''],
    ['a non-ASCII letter', 'jöb'],
  ])('a jobId with %s with 400 saying which characters are allowed', async (_what, jobId) => {
    const answer = await post({ ...valid, jobId });
    expectProblem(
      answer,
      400,
      'validation-failed',
      /^body\/jobId must be 1 to 128 characters of A-Z a-z 0-9 \. _ : - \(and not "\." or "\.\."\)$/,
    );
    expect(answer.text, 'no raw regular expression').not.toContain('(?!');
  });

  it.each([86_401, 1e12])('ttlSeconds %d with 400 stating the range', async (ttlSeconds) => {
    const answer = await post({ ...valid, ttlSeconds });
    expectProblem(answer, 400, 'invalid-ttl', /ttlSeconds must be an integer from 1 to 86400/);
    expect(answer.body).toMatchObject({ minTtlSeconds: 1, maxTtlSeconds: 86_400 });
  });

  it.each([0, -1, 1.5])(
    'ttlSeconds %d with 400, as the contract says (a whole number from 1)',
    async (ttlSeconds) => {
      const answer = await post({ ...valid, ttlSeconds });
      expectProblem(answer, 400, 'validation-failed', /ttlSeconds/);
    },
  );

  it('ttlSeconds that is not a number with 400', async () => {
    const answer = await post({ ...valid, ttlSeconds: 'an hour' });
    expectProblem(answer, 400, 'validation-failed', /ttlSeconds/);
  });

  it('an unknown delivery mode with 400', async () => {
    const answer = await post({ ...valid, delivery: 'email' });
    expectProblem(answer, 400, 'validation-failed', /delivery/);
  });

  it('an unknown field with 400, so a typo never passes silently', async () => {
    const answer = await post({ ...valid, readOnly: false });
    expectProblem(answer, 400, 'validation-failed', /unknown field "readOnly"/);
  });

  it('a missing field with 400 naming it', async () => {
    const { provider: _omitted, ...rest } = valid;
    const answer = await post(rest);
    expectProblem(answer, 400, 'validation-failed', /provider/);
  });

  it('a body over 16 KiB with 413', async () => {
    const answer = await post({ ...valid, padding: 'x'.repeat(17 * 1024) });
    expectProblem(answer, 413, 'body-too-large', /larger/);
  });

  it.each([
    ['not JSON', '{"provider": github'],
    ['empty', ''],
  ])('a body that is %s with 400', async (_what, text) => {
    const answer = await harness.api('POST', '/v1/keys', {
      body: text,
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(answer, 400, 'invalid-json', /JSON/);
  });

  it('a JSON array instead of an object with 400', async () => {
    const answer = await post([valid]);
    expectProblem(answer, 400, 'validation-failed', /object/);
  });

  it('a body that is not JSON at all with 415', async () => {
    const answer = await harness.api('POST', '/v1/keys', {
      body: 'provider=github',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expectProblem(answer, 415, 'unsupported-media-type', /application\/json/);
  });

  it('a malformed Idempotency-Key with 400', async () => {
    const answer = await post(valid, { headers: { 'idempotency-key': 'x'.repeat(256) } });
    expectProblem(answer, 400, 'validation-failed', /idempotency-key/);
  });
});

describe('authentication', () => {
  it('refuses a request without Authorization with 401 and a Bearer challenge', async () => {
    const answer = await post(valid, { token: null });
    expectProblem(answer, 401, 'unauthorized', /Bearer/);
    expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer /);
  });

  it('refuses a wrong token with 401, and the same for a listing', async () => {
    const wrong = await post(valid, { token: `${harness.token}x` });
    expectProblem(wrong, 401, 'unauthorized', undefined);
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Bearer /);
    const listing = await harness.api('GET', '/v1/keys', { token: 'dkr_test_not-a-real-token-at-all' });
    expectProblem(listing, 401, 'unauthorized', undefined);
  });

  it('refuses a scheme other than Bearer with 401', async () => {
    const answer = await post(valid, { token: null, headers: { authorization: `Basic ${harness.token}` } });
    expectProblem(answer, 401, 'unauthorized', /Bearer/);
  });

  it('checks the caller before it looks at the body', async () => {
    const answer = await harness.api('POST', '/v1/keys', {
      body: '{not json',
      token: null,
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(answer, 401, 'unauthorized', undefined);
  });
});

describe('GET /v1/keys', () => {
  it('refuses a key id that is not a UUID with 400', async () => {
    const answer = await harness.api('GET', '/v1/keys/not-a-uuid');
    expectProblem(answer, 400, 'validation-failed', /id/);
  });

  it('answers a well-formed id nobody issued with 404', async () => {
    const answer = await harness.api('GET', '/v1/keys/00000000-0000-4000-8000-000000000000');
    expectProblem(answer, 404, 'key-not-found', /00000000-0000-4000-8000-000000000000/);
  });

  it.each([
    ['a cursor it never handed out', 'cursor=bm90LWEtY3Vyc29y', 'invalid-cursor', /cursor/],
    ['a limit over 200', 'limit=201', 'validation-failed', /limit/],
    ['an unknown status', 'status=lost', 'validation-failed', /status/],
    ['an unknown filter', 'owner=acme', 'validation-failed', /unknown field "owner"/],
  ])('refuses %s with 400', async (_what, query, code, detail) => {
    const answer = await harness.api('GET', `/v1/keys?${query}`);
    expectProblem(answer, 400, code, detail);
  });
});
