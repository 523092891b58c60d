-- Up Migration

-- Callers without workload identity (Jenkins, scripts, operators). Only a SHA-256 hash of each
-- token is kept; the token itself is shown once, when it is created.
CREATE TABLE api_tokens (
  id           uuid        PRIMARY KEY,
  name         text        NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9._-]{1,64}$'),
  role         text        NOT NULL CHECK (role IN ('issuer', 'auditor', 'admin')),
  token_sha256 text        NOT NULL UNIQUE,
  created_at   timestamptz NOT NULL DEFAULT now(),
  created_by   text        NOT NULL,
  expires_at   timestamptz,
  revoked_at   timestamptz,
  last_used_at timestamptz
);

-- Per-caller active-key limits count live keys of one caller.
CREATE INDEX deploy_keys_caller_live ON deploy_keys (caller)
  WHERE status IN ('pending', 'active', 'revoking');
