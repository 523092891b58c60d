-- Up Migration

-- A key belongs to its owner: the caller's id plus the claims the allowing rule bound (see
-- src/keys/ownership.ts). Keys issued before this migration belong to their caller id as it was.
-- repository_key is the repository's identity on its host (lower case: GitHub and GitLab paths are
-- case-insensitive); `repository` keeps the caller's spelling.
ALTER TABLE deploy_keys ADD COLUMN owner text, ADD COLUMN repository_key text;
UPDATE deploy_keys SET owner = caller, repository_key = lower(repository);
ALTER TABLE deploy_keys ALTER COLUMN owner SET NOT NULL;

-- Before this migration one job could hold live keys for one repository in several spellings.
-- The oldest stays; every other one is revoked (the worker and the reconciler finish what this
-- starts), audited as the service audits a revoke, and gives up its repository_key so the new
-- uniqueness below holds.
DO $$
DECLARE
  extra record;
  at timestamptz;
  details text := '{"reason":"manual","why":"the job holds a live key for this repository in another spelling"}';
BEGIN
  FOR extra IN
    SELECT id, provider, repository, job_id FROM (
      SELECT id, provider, repository, job_id,
             row_number() OVER (PARTITION BY owner, job_id, provider, repository_key ORDER BY created_at, id) AS n
      FROM deploy_keys WHERE status IN ('pending', 'active', 'revoking')
    ) ranked WHERE n > 1
  LOOP
    UPDATE deploy_keys
      SET status = 'revoking', revoke_reason = 'manual', revoke_requested_at = now(),
          repository_key = NULL, updated_at = now()
      WHERE id = extra.id;
    at := date_trunc('milliseconds', clock_timestamp());
    PERFORM audit_append(
      '{"action":"key.revoke_requested","actor":"system:deploykey-rotator","at":"'
        || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '","details":' || details || ',',
      at, 'system:deploykey-rotator', 'key.revoke_requested', details::jsonb,
      extra.id, extra.provider, extra.repository, extra.job_id);
  END LOOP;
END $$;

-- Only a key revoked for a duplicate spelling above lacks an identity.
ALTER TABLE deploy_keys ADD CONSTRAINT deploy_keys_repository_key_when_live
  CHECK (repository_key IS NOT NULL OR status IN ('revoking', 'revoked', 'failed'));

-- One live key per owner, job, provider and repository: the Vault path stays predictable, no other
-- caller can take a job id first, and no spelling of the repository makes a second key.
DROP INDEX deploy_keys_one_live_per_job_repository;
CREATE UNIQUE INDEX deploy_keys_one_live_per_owner_job_repository
  ON deploy_keys (owner, job_id, provider, repository_key)
  WHERE status IN ('pending', 'active', 'revoking');

-- A retried request finds the first key of the same owner only.
DROP INDEX deploy_keys_idempotency;
CREATE UNIQUE INDEX deploy_keys_idempotency ON deploy_keys (owner, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

-- Issuers list their own keys by owner; everyone filters by repository identity.
CREATE INDEX deploy_keys_owner_created ON deploy_keys (owner, created_at DESC, id DESC);
DROP INDEX deploy_keys_repository_created;
CREATE INDEX deploy_keys_repository_key_created ON deploy_keys (repository_key, created_at DESC, id DESC);
