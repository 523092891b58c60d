import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/rest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { GithubApp } from '../../sandbox/github/app-registry.ts';
import { type GithubStandIn, startGithubStandIn } from '../../sandbox/github/stand-in.ts';
import { createHostState } from '../../sandbox/shared/host-state.ts';
import { appJwt, quiet, rsaPair } from '../support/github-apps.ts';

let clock = Date.now();
let github: GithubStandIn;
let app: GithubApp;
let installationId: number;
// The test keeps the private key and gives GitHub the public half, as in "Managing private keys".
const keys = rsaPair();
const strangerKeys = rsaPair();

const now = () => Math.floor(clock / 1000);
const messages = {
  undecodable: 'A JSON web token could not be decoded',
  issuer: "'Issuer' claim ('iss') must be an Integer",
  issuedAt:
    "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
  expired:
    "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
  tooFar: "'Expiration time' claim ('exp') is too far in the future",
};

async function call(jwt: string, path = '/app', scheme = 'Bearer') {
  const response = await fetch(`${github.url}${path}`, { headers: { authorization: `${scheme} ${jwt}` } });
  return { status: response.status, body: (await response.json()) as { message: string } };
}
const refused = (status: number, message: string) => ({
  status,
  body: { message, documentation_url: 'https://docs.github.com/rest', status: String(status) },
});

beforeAll(async () => {
  const state = createHostState('github');
  state.addRepository('acme/widgets', '/srv/git/acme/widgets.git');
  github = await startGithubStandIn({
    state,
    tokens: ['ghp_sandboxAdmin'],
    sshHostKeys: () => [],
    now: () => clock,
  });
  app = github.apps.registerApp({ name: 'rotator', publicKeyPem: keys.publicKeyPem }).app;
  installationId = github.apps.install(app.id, { account: 'acme' }).id;
});
afterAll(() => github.close());
beforeEach(async () => {
  clock = Date.now();
  await fetch(`${github.url}/_sandbox/stats`, { method: 'DELETE' });
});

describe('GitHub stand-in: App JWTs checked as GitHub checks them', () => {
  it('accepts GitHub’s documented JWT: RS256, iat 60 s back, exp 10 minutes ahead, iss the app or client id', async () => {
    for (const iss of [app.id, String(app.id), app.clientId]) {
      const jwt = await appJwt(keys.privateKeyPem, { iss, iat: now() - 60, exp: now() + 600 });
      const answer = await call(jwt);
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ id: app.id, slug: 'rotator' });
    }
  });

  it('refuses an expired JWT, one whose exp is too far ahead, and one issued in the future', async () => {
    const sign = (iat: number, exp: number) => appJwt(keys.privateKeyPem, { iss: app.id, iat, exp });
    expect(await call(await sign(now() - 660, now() - 1))).toEqual(refused(401, messages.expired));
    expect(await call(await sign(now() - 60, now()))).toEqual(refused(401, messages.expired));
    expect(await call(await sign(now(), now() + 601))).toEqual(refused(401, messages.tooFar));
    // Back-dating iat earns 60 s of lifetime, no more.
    expect(await call(await sign(now() - 120, now() + 545))).toEqual(refused(401, messages.tooFar));
    expect(await call(await sign(now() + 30, now() + 600))).toEqual(refused(401, messages.issuedAt));
    const withoutExp = await appJwt(keys.privateKeyPem, { iss: app.id, iat: now() });
    expect(await call(withoutExp)).toEqual(refused(401, messages.expired));
  });

  it('refuses a wrong or missing issuer, a foreign signature and anything that is not RS256', async () => {
    const valid = { iat: now() - 30, exp: now() + 540 };
    expect(await call(await appJwt(keys.privateKeyPem, { ...valid, iss: app.id + 1 }))).toEqual(
      refused(404, 'Integration not found'),
    );
    expect(await call(await appJwt(keys.privateKeyPem, valid))).toEqual(refused(401, messages.issuer));
    expect(await call(await appJwt(strangerKeys.privateKeyPem, { ...valid, iss: app.id }))).toEqual(
      refused(401, messages.undecodable),
    );
    expect(await call(await appJwt(keys.privateKeyPem, { ...valid, iss: app.id }, 'HS256'))).toEqual(
      refused(401, messages.undecodable),
    );
    expect(await call('not.a.jwt')).toEqual(refused(401, messages.undecodable));
  });

  it('keeps App JWTs and other credentials to their own routes', async () => {
    const jwt = await appJwt(keys.privateKeyPem, { iss: app.id, iat: now() - 30, exp: now() + 540 });
    expect(await call(jwt, '/repos/acme/widgets/keys')).toEqual(refused(401, 'Bad credentials'));
    expect(await call('ghp_sandboxAdmin', '/app', 'token')).toEqual(refused(401, messages.undecodable));
    const anonymous = await fetch(`${github.url}/app`);
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { message: string }).message).toBe('Requires authentication');
    // The JWT's own route accepts it under either scheme.
    expect((await call(jwt, `/app/installations/${installationId}`, 'token')).status).toBe(200);
  });

  it('lets @octokit/auth-app correct a clock that differs from GitHub’s through the Date header', async () => {
    const local = Math.floor(Date.now() / 1000);
    clock += 15 * 60_000;
    // Signed by the local clock alone, the JWT has expired by GitHub's.
    const stale = await appJwt(keys.privateKeyPem, { iss: app.id, iat: local - 30, exp: local + 570 });
    expect(await call(stale)).toEqual(refused(401, messages.expired));
    await fetch(`${github.url}/_sandbox/stats`, { method: 'DELETE' });
    const octokit = new Octokit({
      authStrategy: createAppAuth,
      auth: { appId: app.id, privateKey: keys.privateKeyPem },
      baseUrl: github.url,
      log: quiet,
    });
    const { data } = await octokit.rest.apps.getAuthenticated();
    expect(data!.id).toBe(app.id);
    // One refusal, then the retry with the difference accounted for.
    expect(github.faults.stats().byStatus).toEqual({ '401': 1, '200': 1 });
  });
});
