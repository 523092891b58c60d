-- Up Migration

-- Appends one audit event, so a state change and its audit record can be a single statement and the
-- chain lock is held only while that statement runs. The application hashes what it alone knows:
-- `hashed_head` is the canonical JSON of the event up to and including its `details` and the comma
-- after them; the keys that sort after `details` are completed here, the same way JSON.stringify
-- writes them, so the stored hash is exactly the one src/audit/audit-verify.ts recomputes.
-- A plpgsql function, because each statement in it takes a fresh snapshot: the head read after the
-- lock sees every append committed before the lock was granted.
CREATE FUNCTION audit_append(
  hashed_head      text,
  event_at         timestamptz,
  event_actor      text,
  event_action     text,
  event_details    jsonb,
  event_key_id     uuid,
  event_provider   text,
  event_repository text,
  event_job_id     text,
  OUT seq          bigint,
  OUT prev_hash    text,
  OUT hash         text
) AS $$
BEGIN
  -- The lock every append has always taken (0x646b72617564), so writers can never fork the chain.
  PERFORM pg_advisory_xact_lock(110412643267940);
  SELECT e.seq + 1, e.hash INTO seq, prev_hash FROM audit_events e ORDER BY e.seq DESC LIMIT 1;
  IF NOT FOUND THEN
    seq := 1;
    prev_hash := repeat('0', 64);
  END IF;
  hash := encode(sha256(convert_to(
    prev_hash || hashed_head
      || '"jobId":' || coalesce(to_json(event_job_id)::text, 'null')
      || ',"keyId":' || coalesce(to_json(event_key_id::text)::text, 'null')
      || ',"provider":' || coalesce(to_json(event_provider)::text, 'null')
      || ',"repository":' || coalesce(to_json(event_repository)::text, 'null')
      || ',"seq":"' || seq || '"}',
    'UTF8')), 'hex');
  INSERT INTO audit_events (seq, at, actor, action, key_id, provider, repository, job_id, details, prev_hash, hash)
  VALUES (seq, event_at, event_actor, event_action, event_key_id, event_provider, event_repository,
          event_job_id, event_details, prev_hash, hash);
END;
$$ LANGUAGE plpgsql VOLATILE;
