// Who is asking: every credential the service must refuse is refused with 401 problem+json at
// POST /v1/keys, before anything is written or any Git host is called.
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OidcStandIn, startOidcStandIn } from '../../sandbox/oidc/stand-in.ts';
import {
  type Answer,
  expectProblem,
  type SecurityHarness,
  startSecurityHarness,
} from './security-harness.ts';

let h: SecurityHarness;
let stranger: OidcStandIn;
beforeAll(async () => {
  [h, stranger] = await Promise.all([startSecurityHarness(), startOidcStandIn()]);
});
afterAll(async () => {
  await Promise.all([h?.close(), stranger?.close()]);
});

const request = { provider: 'github', repository: 'acme/models', ttlSeconds: 600 };
let jobs = 0;
const issue = (token: string | null, headers: Record<string, string> = {}) =>
  h.call('POST', '/v1/keys', { body: { ...request, jobId: `authn-${++jobs}` }, token, headers });

const segment = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const keyRows = async () =>
  (await h.harness.database.db.selectFrom('deploy_keys').select('id').execute()).length;

/** Sends the request and asserts a 401 that neither wrote a row nor called GitHub. */
async function refused(token: string | null, headers: Record<string, string> = {}): Promise<Answer> {
  const [rowsBefore, githubBefore] = [await keyRows(), h.githubRequests()];
  const answer = await issue(token, headers);
  expectProblem(answer, 401, 'unauthorized');
  expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer realm="deploykey"/);
  expect(await keyRows(), 'no key row for a refused caller').toBe(rowsBefore);
  expect(h.githubRequests(), 'no GitHub call for a refused caller').toBe(githubBefore);
  return answer;
}

// Runs first on purpose: once a token has been verified the issuer's keys are cached, and an
// outage of the issuer no longer stops anyone.
describe('an issuer that is down', () => {
  it('answers 503 with Retry-After, not 401, and serves the same token once the issuer is back', async () => {
    const { oidc } = h.harness.standIns;
    oidc.faults.add({ status: 500, pathPrefix: '/.well-known/jwks' });
    const token = await h.mint('github-actions', { repository: 'acme/models' });
    const down = await issue(token).finally(() => oidc.faults.clear());
    expectProblem(down, 503, 'issuer-unavailable');
    expect(Number(down.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(oidc.faults.stats().injected, 'the JWKS was asked for and failed').toBeGreaterThan(0);

    const back = await issue(token);
    expect(back.status, back.text).toBe(201);
  });
});

describe('a request without a usable bearer token', () => {
  it('with no Authorization header is 401', async () => {
    await refused(null);
  });

  it.each([
    ['another scheme', 'Basic Y2k6c2VjcmV0'],
    ['a bearer with no token', 'Bearer '],
    ['two tokens', 'Bearer one two'],
  ])('with %s in the Authorization header is 401', async (_what, authorization) => {
    await refused(null, { authorization });
  });

  it.each([
    ['random text', 'not-a-token'],
    ['an unknown API token', 'dkr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
    ['a JWT whose payload is not JSON', `${segment({ alg: 'RS256', typ: 'JWT' })}.bm90LWpzb24.c2ln`],
    ['a JWT with four parts', 'aaa.bbb.ccc.ddd'],
  ])('with a malformed token (%s) is 401', async (_what, token) => {
    const answer = await refused(token);
    expect(answer.text).not.toContain(token);
  });

  it('with a token far over any real ID token size is 401', async () => {
    await refused(`${segment({ alg: 'RS256' })}.${'A'.repeat(9_000)}.sig`);
  });
});

describe('a forged or unacceptable ID token', () => {
  const validClaims = async () => decodeJwt(await h.mint('github-actions', { repository: 'acme/models' }));

  it('signed with alg "none" is 401', async () => {
    const forged = `${segment({ alg: 'none', typ: 'JWT' })}.${segment(await validClaims())}.`;
    const answer = await refused(forged);
    expect(answer.body.reason).toBe('unsupported-algorithm');
  });

  it('signed with HS256 using the issuer public key as the secret is 401', async () => {
    const { oidc } = h.harness.standIns;
    const kid = decodeProtectedHeader(await h.mint('github-actions')).kid as string;
    const forged = await new SignJWT(await validClaims())
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid })
      .sign(new TextEncoder().encode(oidc.publicKeyPem()));
    h.remember(forged);
    const answer = await refused(forged);
    expect(answer.body.reason).toBe('unsupported-algorithm');
  });

  it('with a signature that does not match its claims is 401', async () => {
    const [header, , signature] = (await h.mint('github-actions')).split('.');
    const claims = { ...(await validClaims()), repository: 'acme/datasets' };
    const answer = await refused(`${header}.${segment(claims)}.${signature}`);
    expect(answer.body.reason).toBe('bad-signature');
  });

  it.each([
    ['expired', { expiresInSeconds: -120 }, 'expired'],
    ['not valid yet', { notBeforeSeconds: 600 }, 'not-yet-valid'],
    ['for another audience', { audience: 'someone-else' }, 'wrong-audience'],
    ['signed under an unknown kid', { kid: 'no-such-key' }, 'unknown-key'],
  ] as const)('that is %s is 401', async (_what, options, reason) => {
    const token = await h.mint('github-actions', { repository: 'acme/models' }, { ...options });
    const answer = await refused(token);
    expect(answer.body.reason).toBe(reason);
  });

  it('from an issuer that is not configured is 401, and that issuer is never contacted', async () => {
    const token = await stranger.mint('github-actions', { repository: 'acme/models' });
    h.remember(token);
    const answer = await refused(token);
    expect(answer.body.reason).toBe('unknown-issuer');
    expect(stranger.faults.stats().total).toBe(0);
  });
});

describe('an API token that no longer counts', () => {
  const create = async (name: string) => {
    const created = await h.call('POST', '/v1/admin/tokens', {
      body: { name, role: 'issuer', expiresInSeconds: 3_600 },
      token: h.harness.tokens.admin!,
    });
    expect(created.status, created.text).toBe(201);
    const works = await h.call('GET', '/v1/keys', { token: created.body.token });
    expect(works.status, 'the new token works before it is withdrawn').toBe(200);
    return created.body.token as string;
  };

  it('is 401 once revoked', async () => {
    const token = await create('revoked-ci');
    const revoked = await h.call('DELETE', '/v1/admin/tokens/revoked-ci', { token: h.harness.tokens.admin! });
    expect(revoked.status).toBe(200);
    await refused(token);
    expectProblem(await h.call('GET', '/v1/keys', { token }), 401, 'unauthorized');
  });

  it('is 401 once its lifetime has run out', async () => {
    const token = await create('expired-ci');
    await h.harness.database.db
      .updateTable('api_tokens')
      .set({ expires_at: new Date(Date.now() - 1_000) })
      .where('name', '=', 'expired-ci')
      .execute();
    await refused(token);
  });
});

it('a valid workload token still gets its key, so the refusals above are not blanket ones', async () => {
  const answer = await issue(await h.mint('github-actions', { repository: 'acme/models' }));
  expect(answer.status, answer.text).toBe(201);
});

it('no token, minted JWT or private key appears in an error body or a log line', async () => {
  await h.expectNoLeaks();
});
