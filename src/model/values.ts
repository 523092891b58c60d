// The domain's closed sets of words and its id patterns, as plain constants. The TypeBox schemas in
// ./schemas.ts are derived from them; the lean client and the GitHub Action import only this file,
// because their bundles may take in nothing but Node.

/** A key's states; src/keys/key-lifecycle.ts holds the moves between them. */
export const KEY_STATUSES = ['pending', 'active', 'revoking', 'revoked', 'failed'] as const;
/** How the private half reaches the job: only in Vault, also in the answer that issued it, or wrapped. */
export const DELIVERIES = ['vault', 'response', 'wrapped'] as const;
export const REVOKE_REASONS = [
  'expired',
  'job-completed',
  'manual',
  'orphan',
  'job-ended',
  'job-deleted',
] as const;
/** An API token's role; src/auth/access.ts says what each may do. */
export const ROLES = ['issuer', 'auditor', 'admin'] as const;

/** A configured Git host's id, unanchored, for patterns that embed it. */
export const HOST_ID = '[a-z][a-z0-9-]{0,31}';
/** A configured Git host's id, which callers name as `provider`. */
export const HOST_ID_PATTERN = `^${HOST_ID}$`;
// "." and ".." are refused: the job id is a segment of the key's Vault path.
export const JOB_ID_PATTERN = '^(?!\\.\\.?$)[A-Za-z0-9._:-]{1,128}$';
/** JOB_ID_PATTERN in words, for whoever sent a job id that does not match it. */
export const JOB_ID_RULE = 'must be 1 to 128 characters of A-Z a-z 0-9 . _ : - (and not "." or "..")';
/** A key's id, unanchored, for patterns that embed it (a host key's title). */
export const KEY_ID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
/** A key's id: a UUID in lower case, as Postgres writes it. */
export const KEY_ID_PATTERN = `^${KEY_ID}$`;
