-- Up Migration

-- The accessor of the single-use wrapping token a `wrapped` key was delivered with. An accessor can
-- revoke its token but never unwrap it: a replayed request gets the accessor, never a new token,
-- and revoking the key revokes the token too, so nothing unwraps after the key is gone.
ALTER TABLE deploy_keys ADD COLUMN wrap_accessor text;
