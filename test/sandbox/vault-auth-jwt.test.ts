import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import vault from 'node-vault';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type OidcStandIn, startOidcStandIn } from '../../sandbox/oidc/stand-in.ts';
import { startVaultStandIn, type VaultStandIn } from '../../sandbox/vault/stand-in.ts';
import { INVALID_TOKEN, vaultFailure } from '../support/vault-calls.ts';

let standIn: VaultStandIn;
let oidc: OidcStandIn;
let root: vault.client;
let clock = Date.now();

const ciRole = {
  role_type: 'jwt',
  bound_audiences: ['vault'],
  user_claim: 'repository',
  bound_claims: { repository_owner: 'acme' },
  claim_mappings: { repository: 'repository', ref: 'git_ref' },
  token_policies: ['deploy-keys'],
  token_ttl: '5s',
  token_max_ttl: '30s',
};

const login = (role: string, jwt: string) =>
  vault({ endpoint: standIn.addr }).write('auth/jwt/login', { role, jwt });
const refusal = (message: string) => ({ status: 400, body: { errors: [message] } });
async function refused(call: Promise<unknown>) {
  const { status, body } = await vaultFailure(call);
  return { status, body };
}
const ciToken = (
  claims: Record<string, unknown> = {},
  options: { audience?: string; expiresInSeconds?: number } = {},
) => oidc.mint('github-actions', { repository: 'acme/models', ...claims }, { audience: 'vault', ...options });

beforeAll(async () => {
  oidc = await startOidcStandIn();
  standIn = await startVaultStandIn({ rootToken: 'root-jwt', now: () => clock });
  root = vault({ endpoint: standIn.addr, token: 'root-jwt' });
  await root.write('auth/jwt/config', { oidc_discovery_url: oidc.issuer, bound_issuer: oidc.issuer });
  await root.write('auth/jwt/role/ci', ciRole);
});
afterAll(async () => {
  await standIn.close();
  await oidc.close();
});
beforeEach(() => {
  clock = Math.ceil(Date.now() / 1000) * 1000;
});

describe('Vault stand-in: JWT auth login', () => {
  it('logs a CI job in with its OIDC token and maps its claims into the token’s metadata', async () => {
    const { auth } = await login('ci', await ciToken({ ref: 'refs/heads/main' }));
    expect(auth).toMatchObject({
      lease_duration: 5,
      renewable: true,
      policies: ['default', 'deploy-keys'],
      metadata: { role: 'ci', repository: 'acme/models', git_ref: 'refs/heads/main' },
    });
    const self = await vault({ endpoint: standIn.addr, token: auth.client_token }).tokenLookupSelf();
    expect(self.data).toMatchObject({ display_name: 'jwt-acme/models', path: 'auth/jwt/login' });
    // node-vault's own command logs in the same way and keeps the token.
    const client = vault({ endpoint: standIn.addr });
    await client.jwtLogin({ role: 'ci', jwt: await ciToken() });
    expect((await client.tokenLookupSelf()).data.meta).toMatchObject({ role: 'ci' });
  });

  it('refuses a JWT for another audience, with other bound claims, or expired', async () => {
    expect(await refused(login('ci', await ciToken({}, { audience: 'someone-else' })))).toEqual(
      refusal(
        'error validating token: invalid audience (aud) claim: audience claim does not match any expected audience',
      ),
    );
    expect(await refused(login('ci', await ciToken({ repository_owner: 'globex' })))).toEqual(
      refusal(
        'error validating claims: claim "repository_owner" does not match any associated bound claim values',
      ),
    );
    expect(await refused(login('ci', await ciToken({}, { expiresInSeconds: -300 })))).toEqual(
      refusal('error validating token: invalid expiration time (exp) claim: token is expired'),
    );
    // Within the role's 60 s clock skew leeway an expired token still passes.
    expect((await login('ci', await ciToken({}, { expiresInSeconds: -30 }))).auth.lease_duration).toBe(5);
  });

  it('refuses a JWT signed by an unknown key, and follows a key rotation by refetching the JWKS', async () => {
    const stranger = await generateKeyPair('RS256');
    const now = Math.floor(Date.now() / 1000);
    const forged = await new SignJWT({
      iss: oidc.issuer,
      aud: 'vault',
      repository: 'acme/models',
      repository_owner: 'acme',
    })
      .setProtectedHeader({ alg: 'RS256', kid: 'forged' })
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(stranger.privateKey);
    expect(await refused(login('ci', forged))).toEqual(
      refusal('error validating token: error verifying token signature: failed to verify id token signature'),
    );
    oidc.rotateKey();
    expect((await login('ci', await ciToken())).auth.metadata.role).toBe('ci');
  });

  it('refuses a missing or unknown role and a missing token', async () => {
    const jwt = await ciToken();
    expect(await refused(vault({ endpoint: standIn.addr }).write('auth/jwt/login', { jwt }))).toEqual(
      refusal('missing role'),
    );
    expect(await refused(login('nobody', jwt))).toEqual(refusal('role "nobody" could not be found'));
    expect(await refused(login('ci', ''))).toEqual(refusal('missing token'));
  });

  it('renews on the role’s TTL up to its max TTL, then the token expires', async () => {
    const { auth } = await login('ci', await ciToken());
    const client = vault({ endpoint: standIn.addr, token: auth.client_token });
    for (let elapsed = 4; elapsed <= 28; elapsed += 4) {
      clock += 4_000;
      const renewed = await client.tokenRenewSelf();
      expect(renewed.auth.lease_duration).toBe(Math.min(5, 30 - elapsed));
    }
    clock += 2_000;
    expect(await refused(client.tokenLookupSelf())).toEqual({ status: 403, body: INVALID_TOKEN });
  });
});

describe('Vault stand-in: JWT auth configuration and roles', () => {
  it('verifies against PEM keys given in jwt_validation_pubkeys, checking bound_issuer', async () => {
    const pair = await generateKeyPair('ES256');
    await root.write('auth/jwt/config', {
      jwt_validation_pubkeys: [await exportSPKI(pair.publicKey)],
      bound_issuer: 'https://ci.example',
    });
    const sign = (iss: string) =>
      new SignJWT({ iss, aud: 'vault', repository: 'acme/tools', repository_owner: 'acme' })
        .setProtectedHeader({ alg: 'ES256' })
        .setIssuedAt()
        .setExpirationTime('2m')
        .sign(pair.privateKey);
    try {
      expect((await login('ci', await sign('https://ci.example'))).auth.metadata.repository).toBe(
        'acme/tools',
      );
      expect(await refused(login('ci', await sign('https://elsewhere.example')))).toEqual(
        refusal('error validating token: invalid issuer (iss) claim'),
      );
      expect(await refused(login('ci', await ciToken()))).toEqual(
        refusal(
          'error validating token: error verifying token signature: no known key successfully validated the token signature',
        ),
      );
    } finally {
      await root.write('auth/jwt/config', { jwks_url: oidc.jwksUri, bound_issuer: oidc.issuer });
    }
    expect((await root.read('auth/jwt/config')).data).toMatchObject({
      jwks_url: oidc.jwksUri,
      oidc_discovery_url: '',
    });
    expect((await login('ci', await ciToken())).auth.lease_duration).toBe(5);
  });

  it('refuses a config with no key source, two of them, or one it cannot reach', async () => {
    const exactlyOne =
      "exactly one of 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs' or 'oidc_discovery_url' must be set";
    expect(await refused(root.write('auth/jwt/config', {}))).toEqual(refusal(exactlyOne));
    expect(
      await refused(
        root.write('auth/jwt/config', { jwks_url: oidc.jwksUri, oidc_discovery_url: oidc.issuer }),
      ),
    ).toEqual(refusal(exactlyOne));
    const nowhere = `${standIn.addr}/v1/nowhere/jwks`;
    expect(await refused(root.write('auth/jwt/config', { jwks_url: nowhere }))).toEqual(
      refusal(`error checking jwks URL ${nowhere}`),
    );
    expect(
      await refused(root.write('auth/jwt/config', { oidc_discovery_url: `${oidc.issuer}/other` })),
    ).toEqual(refusal('error checking oidc discovery URL'));
  });

  it('refuses roles without a user claim or a bound constraint, and keeps an audience to its binding', async () => {
    expect(await refused(root.write('auth/jwt/role/bad', { ...ciRole, user_claim: '' }))).toEqual(
      refusal('a user claim must be defined on the role'),
    );
    expect(await refused(root.write('auth/jwt/role/bad', { role_type: 'jwt', user_claim: 'sub' }))).toEqual(
      refusal('must have at least one bound constraint when creating/updating a role'),
    );
    expect(await refused(root.write('auth/jwt/role/bad', { user_claim: 'sub', bound_subject: 'x' }))).toEqual(
      refusal("'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified."),
    );
    await root.write('auth/jwt/role/by-claims', {
      role_type: 'jwt',
      user_claim: 'sub',
      bound_claims: { repository: 'acme/*' },
      bound_claims_type: 'glob',
    });
    expect((await root.read('auth/jwt/role/by-claims')).data).toMatchObject({
      bound_claims_type: 'glob',
      expiration_leeway: 150,
      clock_skew_leeway: 60,
    });
    expect(await refused(login('by-claims', await ciToken()))).toEqual(
      refusal('audience claim found in JWT but no audiences bound to the role'),
    );
  });
});
