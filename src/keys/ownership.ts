// Who owns a key, and where its secret lives. A key belongs to the caller's full identity: its id
// (issuer and subject, or token name) plus the claims the rule that allowed it bound. A CI platform
// may give many workflows one subject (GitHub's `sub` can leave out the ref), so the subject alone
// would let a workflow that no rule accepts reach another's keys. Job ids, idempotency keys and
// Vault paths are scoped by the owner, so no caller can take, block or probe another's.
import { createHash } from 'node:crypto';
import { canonicalJson } from '../audit/canonical-json.ts';

/** The owner identity of a key issued to `callerId` under a rule that bound these claims. */
export function ownerIdentity(callerId: string, boundClaims: Record<string, string>): string {
  return Object.keys(boundClaims).length === 0 ? callerId : `${callerId} ${canonicalJson(boundClaims)}`;
}

/**
 * The Vault path segment of an owner: stable for the owner, so its paths stay predictable, and
 * the same for no two owners (a SHA-256 prefix), whatever their ids contain.
 */
export function ownerScope(owner: string): string {
  return `o-${createHash('sha256').update(owner).digest('hex').slice(0, 24)}`;
}

/**
 * A repository's identity on its host: GitHub and GitLab both find a repository whatever the case
 * of its path, so `ACME/Models` and `acme/models` are one repository and must be one key's worth.
 * Callers keep their spelling for display; uniqueness, Vault paths and orphan scans use this.
 */
export function repositoryKey(repository: string): string {
  return repository.toLowerCase();
}
