// Turns `Authorization: Bearer …` into a Caller: an API token (`dkr_…`) or an OIDC JWT from a
// trusted issuer. Everything downstream sees only the Caller.
import type { FastifyRequest } from 'fastify';
import { RefusalError } from '../errors.ts';
import type { Caller } from '../keys/caller.ts';
import { API_TOKEN_PREFIX, type ApiTokens } from './api-tokens.ts';
import { bearerToken, unauthorized } from './bearer-token.ts';
import type { OidcIdentity, OidcVerifier } from './oidc.ts';
import { API_TOKEN_ISSUER } from './policy-schema.ts';
import { printable } from './policy-values.ts';

export type Authenticator = (request: FastifyRequest) => Promise<Caller>;

// Platform claims kept with each key: enough to tell which workload asked, never a secret.
const RECORDED_CLAIMS = [
  'repository',
  'repository_owner',
  'ref',
  'ref_protected',
  'workflow',
  'run_id',
  'actor',
  'project_path',
  'namespace_path',
  'pipeline_id',
  'job_id',
  'user_login',
  'environment',
  'kubernetes.io',
];

function callerFromIdentity(identity: OidcIdentity): Caller {
  const recorded = Object.fromEntries(
    RECORDED_CLAIMS.filter((c) => c in identity.claims).map((c) => [c, identity.claims[c]]),
  );
  return {
    id: `oidc:${identity.issuerId}:${identity.subject}`,
    actor: `${identity.issuerId}:${identity.subject}`,
    role: 'issuer',
    subject: { issuer: identity.issuerId, claims: identity.claims },
    details: { kind: identity.kind, issuer: identity.issuer, subject: identity.subject, claims: recorded },
  };
}

export function createAuthenticator(deps: { tokens: ApiTokens; oidc?: OidcVerifier }): Authenticator {
  return async (request) => {
    const token = bearerToken(request);
    if (token.startsWith(API_TOKEN_PREFIX)) {
      const row = await deps.tokens.authenticate(token);
      if (!row) throw unauthorized('the API token is unknown, revoked or expired');
      return {
        id: `token:${row.name}`,
        actor: `token:${row.name}`,
        role: row.role,
        subject: { issuer: API_TOKEN_ISSUER, tokenName: row.name, claims: {} },
        details: { kind: 'api-token', name: row.name },
      };
    }
    if (!deps.oidc?.looksLikeJwt(token))
      throw unauthorized('the bearer token is neither an API token nor a JWT');
    try {
      return callerFromIdentity(await deps.oidc.verify(token));
    } catch (error) {
      const reason = (error as { reason?: string }).reason;
      if (!reason) throw error;
      const identity = (error as { identity?: { issuerId: string; subject: string } }).identity;
      if (reason === 'issuer-unavailable') {
        throw new RefusalError(
          'issuer-unavailable',
          'the token issuer cannot be reached to verify the token',
        );
      }
      throw new RefusalError('unauthorized', (error as Error).message, {
        extra: { reason },
        // A token whose signature verified comes from a known caller: refusing it is audited.
        ...(identity
          ? { denial: { actor: `${identity.issuerId}:${printable(identity.subject)}`, reason } }
          : {}),
      });
    }
  };
}
