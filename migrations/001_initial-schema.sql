-- Up Migration

-- Keys this service has issued. Postgres is the source of truth for every key's lifecycle;
-- no column ever holds private key material (that lives only in Vault).
CREATE TABLE deploy_keys (
  id                  uuid PRIMARY KEY,
  provider            text        NOT NULL,
  repository          text        NOT NULL,
  job_id              text        NOT NULL,
  status              text        NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'active', 'revoking', 'revoked', 'failed')),
  delivery            text        NOT NULL CHECK (delivery IN ('vault', 'response', 'wrapped')),
  fingerprint         text,
  public_key          text,
  host_key_id         text,
  vault_path          text,
  caller              text        NOT NULL,
  caller_details      jsonb       NOT NULL DEFAULT '{}'::jsonb,
  created_at          timestamptz NOT NULL DEFAULT now(),
  activated_at        timestamptz,
  expires_at          timestamptz NOT NULL,
  revoke_requested_at timestamptz,
  revoked_at          timestamptz,
  revoke_reason       text CHECK (revoke_reason IN ('expired', 'job-completed', 'manual', 'orphan')),
  failure_reason      text,
  attempts            integer     NOT NULL DEFAULT 0,
  last_error          text,
  idempotency_key     text,
  request_hash        text,
  updated_at          timestamptz NOT NULL DEFAULT now(),
  CHECK (idempotency_key IS NULL OR request_hash IS NOT NULL)
);

-- A retried request (same caller, same Idempotency-Key) finds the first key instead of making a second.
CREATE UNIQUE INDEX deploy_keys_idempotency ON deploy_keys (caller, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

-- One live key per job, provider and repository, so its Vault path stays predictable and a
-- revoke still in flight can never destroy the secret of the key that replaced it.
CREATE UNIQUE INDEX deploy_keys_one_live_per_job_repository ON deploy_keys (job_id, provider, repository)
  WHERE status IN ('pending', 'active', 'revoking');

-- Listing, newest first, with keyset pagination on (created_at, id).
CREATE INDEX deploy_keys_created ON deploy_keys (created_at DESC, id DESC);
CREATE INDEX deploy_keys_caller_created ON deploy_keys (caller, created_at DESC, id DESC);
CREATE INDEX deploy_keys_repository_created ON deploy_keys (provider, repository, created_at DESC, id DESC);
CREATE INDEX deploy_keys_job ON deploy_keys (job_id, created_at DESC, id DESC);

-- Expiry sweeps and the overdue gauge only look at keys that still exist somewhere.
CREATE INDEX deploy_keys_live_expiry ON deploy_keys (expires_at)
  WHERE status IN ('active', 'revoking');
CREATE INDEX deploy_keys_pending_created ON deploy_keys (created_at)
  WHERE status = 'pending';

-- Append-only, hash-chained record of every state change.
CREATE TABLE audit_events (
  seq        bigint      PRIMARY KEY,
  at         timestamptz NOT NULL,
  actor      text        NOT NULL,
  action     text        NOT NULL,
  key_id     uuid,
  provider   text,
  repository text,
  job_id     text,
  details    jsonb       NOT NULL DEFAULT '{}'::jsonb,
  prev_hash  text        NOT NULL,
  hash       text        NOT NULL UNIQUE
);
CREATE INDEX audit_events_key ON audit_events (key_id, seq) WHERE key_id IS NOT NULL;
CREATE INDEX audit_events_at ON audit_events (at, seq);
CREATE INDEX audit_events_repository ON audit_events (repository, seq) WHERE repository IS NOT NULL;
CREATE INDEX audit_events_job ON audit_events (job_id, seq) WHERE job_id IS NOT NULL;
CREATE INDEX audit_events_action ON audit_events (action, seq);

CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only (% rejected)', TG_OP;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
