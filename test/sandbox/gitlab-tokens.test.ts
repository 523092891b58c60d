import { GitbeakerRequestError, Gitlab } from '@gitbeaker/rest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type GitlabStandIn, startGitlabStandIn } from '../../sandbox/gitlab/stand-in.ts';
import { createHostState } from '../../sandbox/shared/host-state.ts';

const TOKEN = 'glpat-sandboxTokenAlpha';
const OTHER = 'glpat-sandboxTokenBravo';
let gitlab: GitlabStandIn;
let host: string;

const day = (offsetDays: number) => new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);

/** The rejection gitbeaker raised, with the status and body of the HTTP response it carries. */
async function failure(promise: Promise<unknown>) {
  const error = await promise.catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(GitbeakerRequestError);
  const cause = (error as GitbeakerRequestError).cause as { response: Response };
  return { status: cause.response.status, wwwAuthenticate: cause.response.headers.get('www-authenticate') };
}

beforeAll(async () => {
  const state = createHostState('gitlab');
  state.addRepository('acme/models', '/nonexistent/acme/models.git');
  gitlab = await startGitlabStandIn({ state, tokens: [TOKEN, OTHER] });
  host = gitlab.url.replace(/\/api\/v4$/, '');
});
afterAll(() => gitlab.close());
beforeEach(() => gitlab.tokens.setExpiry(TOKEN, day(30)));

describe('GitLab stand-in: personal access tokens', () => {
  it('describes the caller’s own token at personal_access_tokens/self, as GitLab shapes it', async () => {
    const api = new Gitlab({ host, token: TOKEN });
    const self = await api.PersonalAccessTokens.show();
    expect(self).toEqual({
      id: 1,
      name: 'sandbox-token-1',
      revoked: false,
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      description: '',
      scopes: ['api'],
      user_id: 1,
      last_used_at: expect.stringMatching(/Z$/),
      active: true,
      expires_at: day(30),
    });
    const other = await new Gitlab({ host, token: OTHER }).PersonalAccessTokens.show();
    expect(other).toMatchObject({ id: 2, expires_at: day(365) });
  });

  it('carries an expiry date set per token and refuses the token from that day on', async () => {
    const api = new Gitlab({ host, token: TOKEN });
    gitlab.tokens.setExpiry(TOKEN, day(1));
    expect((await api.PersonalAccessTokens.show()).expires_at).toBe(day(1));
    await api.DeployKeys.all({ projectId: 'acme/models' });

    // A token expires at the start of its expiry date.
    gitlab.tokens.setExpiry(TOKEN, day(0));
    const expired = await failure(api.DeployKeys.all({ projectId: 'acme/models' }));
    expect(expired).toEqual({
      status: 401,
      wwwAuthenticate:
        'Bearer realm="The API", error="invalid_token", error_description="Token is expired. You can either do re-authorization or token refresh."',
    });
    const response = await fetch(`${gitlab.url}/personal_access_tokens/self`, {
      headers: { 'private-token': TOKEN },
    });
    expect(await response.json()).toEqual({
      error: 'invalid_token',
      error_description: 'Token is expired. You can either do re-authorization or token refresh.',
    });
    // Other tokens are untouched.
    expect((await new Gitlab({ host, token: OTHER }).PersonalAccessTokens.show()).active).toBe(true);
  });

  it('sets an expiry and revokes a token through /_sandbox/tokens for tests in another process', async () => {
    const patch = (body: unknown) =>
      fetch(`${host}/_sandbox/tokens`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await patch({ token: OTHER, expiresAt: day(3) })).status).toBe(204);
    expect((await new Gitlab({ host, token: OTHER }).PersonalAccessTokens.show()).expires_at).toBe(day(3));
    expect((await patch({ token: 'glpat-unknown', revoked: true })).status).toBe(404);

    expect((await patch({ token: OTHER, revoked: true })).status).toBe(204);
    const revoked = await fetch(`${gitlab.url}/projects/acme%2Fmodels/deploy_keys`, {
      headers: { authorization: `Bearer ${OTHER}` },
    });
    expect(revoked.status).toBe(401);
    expect(await revoked.json()).toEqual({
      error: 'invalid_token',
      error_description: 'Token was revoked. You have to re-authorize from the user.',
    });
    const unknown = await fetch(`${gitlab.url}/personal_access_tokens/self`, {
      headers: { 'private-token': 'x' },
    });
    expect([unknown.status, await unknown.json()]).toEqual([401, { message: '401 Unauthorized' }]);
  });
});
