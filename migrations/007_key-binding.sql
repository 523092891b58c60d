-- Up Migration

-- A key may be bound to the platform job it was issued for (a CI run or job, a Kubernetes Job or
-- pod), so the end of that job revokes it without help from the job. `binding` is what the key
-- shows; `binding_refs` are the canonical strings an ending event looks keys up by (see
-- src/keys/binding.ts).
ALTER TABLE deploy_keys
  ADD COLUMN binding jsonb,
  ADD COLUMN binding_refs text[] NOT NULL DEFAULT '{}';

CREATE INDEX deploy_keys_live_binding_refs ON deploy_keys USING gin (binding_refs)
  WHERE status IN ('pending', 'active');
CREATE INDEX deploy_keys_live_binding_kind ON deploy_keys ((binding->>'kind'), created_at)
  WHERE binding IS NOT NULL AND status IN ('pending', 'active');

ALTER TABLE deploy_keys DROP CONSTRAINT deploy_keys_revoke_reason_check;
ALTER TABLE deploy_keys ADD CONSTRAINT deploy_keys_revoke_reason_check
  CHECK (revoke_reason IN ('expired', 'job-completed', 'manual', 'orphan', 'job-ended', 'job-deleted'));
