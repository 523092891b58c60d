import { decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, type JWTPayload, SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type OidcStandIn, startOidcStandIn } from '../../sandbox/oidc/stand-in.ts';
import type { AuthFailure } from '../../src/auth/auth-error.ts';
import { createOidcVerifier, type OidcIssuer, type OidcVerifier } from '../../src/auth/oidc.ts';
import { createLogger } from '../../src/log.ts';
import type { Clock } from '../../src/time.ts';
import { createCapturedLogger } from '../support/log-capture.ts';

const AUDIENCE = 'deploykey-rotator';
const SKEW = 30;

let standIn: OidcStandIn;
let stranger: OidcStandIn;

beforeAll(async () => {
  [standIn, stranger] = await Promise.all([startOidcStandIn(), startOidcStandIn()]);
});
afterAll(async () => {
  await Promise.all([standIn.close(), stranger.close()]);
});
afterEach(() => standIn.faults.clear());

function verifierFor(
  target: OidcStandIn = standIn,
  issuer: Partial<OidcIssuer> = {},
  fetchTimeoutMs?: number,
  logger = createLogger('silent'),
  clock?: Clock,
): OidcVerifier {
  return createOidcVerifier({
    issuers: [{ id: 'sandbox', issuer: target.issuer, ...issuer }],
    audience: AUDIENCE,
    clockSkewSeconds: SKEW,
    logger,
    ...(fetchTimeoutMs === undefined ? {} : { fetchTimeoutMs }),
    ...(clock === undefined ? {} : { clock }),
  });
}

/** Requests the stand-in has answered so far (discovery + JWKS; minting does not go over HTTP). */
const served = (target: OidcStandIn = standIn) => target.faults.stats().total;

async function refusal(
  verifier: OidcVerifier,
  token: string,
): Promise<{ reason: AuthFailure; message: string }> {
  const error = await verifier.verify(token).then(
    () => expect.fail('the token was accepted'),
    (reason: unknown) => reason as { reason: AuthFailure; message: string },
  );
  if (token) expect(error.message).not.toContain(token);
  return { reason: error.reason, message: error.message };
}

const segment = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function claimsFor(target: OidcStandIn, extra: JWTPayload = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: target.issuer,
    aud: AUDIENCE,
    sub: 'repo:acme/models:ref:refs/heads/main',
    iat: now,
    exp: now + 300,
    ...extra,
  };
}

async function signedWithStandInKey(claims: JWTPayload): Promise<string> {
  const jwk = standIn.privateJwk();
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: jwk.kid as string })
    .sign(await importJWK(jwk, 'RS256'));
}

describe('valid tokens', () => {
  it('verifies a GitHub Actions token and reports its platform, subject and claims', async () => {
    const identity = await verifierFor().verify(await standIn.mint('github-actions'));
    expect(identity).toMatchObject({
      issuerId: 'sandbox',
      issuer: standIn.issuer,
      kind: 'github-actions',
      subject: 'repo:acme/models:ref:refs/heads/main',
      claims: { repository: 'acme/models', repository_owner: 'acme', ref_protected: 'true' },
    });
  });

  it('verifies a GitLab CI token', async () => {
    const identity = await verifierFor().verify(
      await standIn.mint('gitlab-ci', { project_path: 'ml/models' }),
    );
    expect(identity).toMatchObject({
      kind: 'gitlab-ci',
      subject: 'project_path:ml/models:ref_type:branch:ref:main',
      claims: { namespace_path: 'ml', project_path: 'ml/models' },
    });
  });

  it('verifies a Kubernetes service account token whose aud is a list', async () => {
    const identity = await verifierFor().verify(await standIn.mint('kubernetes', { namespace: 'ml-jobs' }));
    expect(identity).toMatchObject({
      kind: 'kubernetes',
      subject: 'system:serviceaccount:ml-jobs:trainer',
      claims: {
        aud: [AUDIENCE],
        'kubernetes.io': { namespace: 'ml-jobs', serviceaccount: { name: 'trainer' } },
      },
    });
  });

  it('reports any other token of a trusted issuer as generic', async () => {
    const identity = await verifierFor().verify(
      await signedWithStandInKey(claimsFor(standIn, { sub: 'svc-42' })),
    );
    expect(identity).toMatchObject({ kind: 'generic', subject: 'svc-42' });
  });

  it('requires the issuer’s own audience when one is configured for it', async () => {
    const verifier = verifierFor(standIn, { audience: 'https://deploykeys.example' });
    const theirs = await standIn.mint('gitlab-ci', {}, { audience: 'https://deploykeys.example' });
    await expect(verifier.verify(theirs)).resolves.toMatchObject({ kind: 'gitlab-ci' });
    expect((await refusal(verifier, await standIn.mint('gitlab-ci'))).reason).toBe('wrong-audience');
  });

  it('accepts expiry and not-before within the clock skew', async () => {
    const verifier = verifierFor();
    await expect(
      verifier.verify(await standIn.mint('github-actions', {}, { expiresInSeconds: -10 })),
    ).resolves.toBeDefined();
    await expect(
      verifier.verify(await standIn.mint('kubernetes', {}, { notBeforeSeconds: 10 })),
    ).resolves.toBeDefined();
  });

  it('tells a JWT from a static API token', async () => {
    const verifier = verifierFor();
    expect(verifier.looksLikeJwt(await standIn.mint('kubernetes'))).toBe(true);
    expect(verifier.looksLikeJwt('ci-runner-0123456789abcdef')).toBe(false);
    expect(verifier.looksLikeJwt('abc.def.ghi')).toBe(false);
  });
});

describe('refused tokens', () => {
  it('refuses an empty token and tokens that are not JWTs', async () => {
    const verifier = verifierFor();
    expect((await refusal(verifier, '')).reason).toBe('missing-token');
    const garbage = [
      'not-a-jwt',
      'abc.def.ghi',
      `${segment({ alg: 'RS256' })}.%%%.sig`,
      `${segment({ alg: 'RS256' })}.${Buffer.from('not json').toString('base64url')}.c2ln`,
      `${segment({ alg: 'RSA-OAEP', enc: 'A256GCM' })}.a.b.c.d`,
      'x'.repeat(20_000),
    ];
    for (const token of garbage) expect((await refusal(verifier, token)).reason).toBe('malformed-token');
  });

  it('refuses alg "none"', async () => {
    const token = `${segment({ alg: 'none', typ: 'JWT' })}.${segment(claimsFor(standIn))}.`;
    expect((await refusal(verifierFor(), token)).reason).toBe('unsupported-algorithm');
  });

  it('refuses HS256 signed with the issuer’s public key as the HMAC secret', async () => {
    const kid = decodeProtectedHeader(await standIn.mint('github-actions')).kid!;
    const token = await new SignJWT(claimsFor(standIn))
      .setProtectedHeader({ alg: 'HS256', kid })
      .sign(new TextEncoder().encode(standIn.publicKeyPem()));
    const verifier = verifierFor();
    expect((await refusal(verifier, token)).reason).toBe('unsupported-algorithm');
  });

  it('refuses an expired token and one not valid yet, beyond the skew', async () => {
    const verifier = verifierFor();
    const expired = await standIn.mint('github-actions', {}, { expiresInSeconds: -(SKEW + 60) });
    expect(await refusal(verifier, expired)).toEqual({ reason: 'expired', message: 'the token has expired' });
    const early = await standIn.mint('gitlab-ci', {}, { notBeforeSeconds: SKEW + 300 });
    expect((await refusal(verifier, early)).reason).toBe('not-yet-valid');
    const issuedLater = await signedWithStandInKey(
      claimsFor(standIn, { iat: Math.floor(Date.now() / 1000) + 600 }),
    );
    expect((await refusal(verifier, issuedLater)).reason).toBe('not-yet-valid');
  });

  it('checks expiry and issue time against the injected clock, not the machine’s', async () => {
    const token = await signedWithStandInKey(claimsFor(standIn));
    const tenMinutes = 600_000;
    const behind = verifierFor(standIn, {}, undefined, undefined, () => new Date(Date.now() - tenMinutes));
    const ahead = verifierFor(standIn, {}, undefined, undefined, () => new Date(Date.now() + tenMinutes));
    expect((await refusal(behind, token)).reason).toBe('not-yet-valid');
    expect((await refusal(ahead, token)).reason).toBe('expired');
    expect((await verifierFor().verify(token)).subject).toBe('repo:acme/models:ref:refs/heads/main');
  });

  it('refuses a token meant for another audience, or for none', async () => {
    const verifier = verifierFor();
    expect(
      (await refusal(verifier, await standIn.mint('kubernetes', {}, { audience: 'vault' }))).reason,
    ).toBe('wrong-audience');
    const { aud: _omitted, ...noAudience } = claimsFor(standIn);
    expect((await refusal(verifier, await signedWithStandInKey(noAudience))).reason).toBe('wrong-audience');
  });

  it('refuses tokens without exp or sub', async () => {
    const verifier = verifierFor();
    const { exp: _exp, ...noExpiry } = claimsFor(standIn);
    const { sub: _sub, ...noSubject } = claimsFor(standIn);
    expect((await refusal(verifier, await signedWithStandInKey(noExpiry))).reason).toBe('invalid-claims');
    expect((await refusal(verifier, await signedWithStandInKey(noSubject))).reason).toBe('invalid-claims');
  });

  it('refuses a token of an issuer that is not configured, without fetching anything', async () => {
    const before = [served(), served(stranger)];
    const { reason } = await refusal(verifierFor(), await stranger.mint('github-actions'));
    expect(reason).toBe('unknown-issuer');
    expect([served(), served(stranger)]).toEqual(before);
  });

  it('refuses a token signed by another key that claims a published kid', async () => {
    const kid = decodeProtectedHeader(await standIn.mint('github-actions')).kid!;
    const { privateKey } = await generateKeyPair('RS256');
    const forged = await new SignJWT(claimsFor(standIn))
      .setProtectedHeader({ alg: 'RS256', kid })
      .sign(privateKey);
    expect((await refusal(verifierFor(), forged)).reason).toBe('bad-signature');
  });

  it('ignores a key embedded in the token header', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const forged = await new SignJWT(claimsFor(standIn))
      .setProtectedHeader({ alg: 'ES256', jwk: await exportJWK(publicKey) })
      .sign(privateKey);
    expect((await refusal(verifierFor(), forged)).reason).toBe('unknown-key');
  });
});

describe('issuer keys', () => {
  it('fetches discovery and JWKS once, then serves many verifications from the cache', async () => {
    const verifier = verifierFor();
    const before = served();
    const tokens = await Promise.all(Array.from({ length: 10 }, () => standIn.mint('gitlab-ci')));
    await Promise.all(tokens.map((token) => verifier.verify(token)));
    for (const token of tokens) await verifier.verify(token);
    expect(served() - before).toBe(2);
  });

  it('uses a configured jwksUri without discovery', async () => {
    const verifier = verifierFor(standIn, { jwksUri: standIn.jwksUri });
    const before = served();
    await verifier.verify(await standIn.mint('kubernetes'));
    await verifier.verify(await standIn.mint('kubernetes'));
    expect(served() - before).toBe(1);
  });

  it('refetches the JWKS once for an unknown kid, then refuses it; further unknown kids cost nothing', async () => {
    const verifier = verifierFor();
    await verifier.verify(await standIn.mint('github-actions'));
    const { privateKey } = await generateKeyPair('RS256');
    const sign = (kid: string) =>
      new SignJWT(claimsFor(standIn)).setProtectedHeader({ alg: 'RS256', kid }).sign(privateKey);
    const before = served();
    expect((await refusal(verifier, await sign('made-up-kid'))).reason).toBe('unknown-key');
    expect(served() - before).toBe(1);
    expect((await refusal(verifier, await sign('another-made-up-kid'))).reason).toBe('unknown-key');
    expect(served() - before).toBe(1);
  });

  it('rations unknown-kid refetches by the injected clock: one more only once the cooldown has passed', async () => {
    let nowMs = Date.now();
    const verifier = verifierFor(standIn, {}, undefined, undefined, () => new Date(nowMs));
    await verifier.verify(await standIn.mint('github-actions'));
    const { privateKey } = await generateKeyPair('RS256');
    const unknown = () =>
      new SignJWT(claimsFor(standIn))
        .setProtectedHeader({ alg: 'RS256', kid: 'rotated-away' })
        .sign(privateKey);
    const before = served();
    await refusal(verifier, await unknown());
    await refusal(verifier, await unknown());
    expect(served() - before, 'one refetch in the cooldown').toBe(1);
    nowMs += 29_000;
    await refusal(verifier, await unknown());
    expect(served() - before).toBe(1);
    nowMs += 1_000;
    await refusal(verifier, await unknown());
    expect(served() - before, 'the cooldown is over on the injected clock').toBe(2);
  });

  it('picks up a rotated key with a single refetch, shared by concurrent requests', async () => {
    const rotating = await startOidcStandIn();
    try {
      const verifier = verifierFor(rotating);
      const old = await rotating.mint('github-actions');
      await verifier.verify(old);
      rotating.rotateKey();
      const fresh = await Promise.all(Array.from({ length: 5 }, () => rotating.mint('gitlab-ci')));
      const before = served(rotating);
      const identities = await Promise.all(fresh.map((token) => verifier.verify(token)));
      expect(identities.map((identity) => identity.kind)).toEqual(Array(5).fill('gitlab-ci'));
      await verifier.verify(old);
      expect(served(rotating) - before).toBe(1);
    } finally {
      await rotating.close();
    }
  });
});

describe('issuer outages', () => {
  it('reports the issuer unavailable when discovery fails, and recovers once it answers', async () => {
    const verifier = verifierFor();
    const token = await standIn.mint('github-actions');
    standIn.faults.add({ status: 500 });
    expect((await refusal(verifier, token)).reason).toBe('issuer-unavailable');
    standIn.faults.clear();
    await expect(verifier.verify(token)).resolves.toMatchObject({ kind: 'github-actions' });
  });

  it('reports the issuer unavailable when only the JWKS fails', async () => {
    standIn.faults.add({ status: 503, pathPrefix: '/.well-known/jwks' });
    expect((await refusal(verifierFor(), await standIn.mint('kubernetes'))).reason).toBe(
      'issuer-unavailable',
    );
  });

  it('reports the issuer unavailable when the JWKS answers slower than the timeout', async () => {
    standIn.faults.add({ latencyMs: 1_000, pathPrefix: '/.well-known/jwks', count: 1 });
    const verifier = verifierFor(standIn, {}, 200);
    expect((await refusal(verifier, await standIn.mint('kubernetes'))).reason).toBe('issuer-unavailable');
  });

  it('keeps verifying with cached keys while the issuer is down', async () => {
    const verifier = verifierFor();
    await verifier.verify(await standIn.mint('gitlab-ci'));
    standIn.faults.add({ status: 500 });
    await expect(verifier.verify(await standIn.mint('gitlab-ci'))).resolves.toMatchObject({
      kind: 'gitlab-ci',
    });
    const { privateKey } = await generateKeyPair('RS256');
    const unknown = await new SignJWT(claimsFor(standIn))
      .setProtectedHeader({ alg: 'RS256', kid: 'not-published' })
      .sign(privateKey);
    expect((await refusal(verifier, unknown)).reason).toBe('issuer-unavailable');
  });

  it('reports the issuer unavailable when it is not listening at all, and logs why without the token', async () => {
    const gone = await startOidcStandIn();
    const captured = createCapturedLogger('debug');
    const verifier = verifierFor(gone, {}, undefined, captured.logger);
    const token = await gone.mint('github-actions');
    await gone.close();
    expect((await refusal(verifier, token)).reason).toBe('issuer-unavailable');
    expect(captured.text()).toContain('issuer-unavailable');
    expect(captured.text()).toContain('ECONNREFUSED');
    expect(captured.text()).not.toContain(token.split('.')[2]!);
  });
});
