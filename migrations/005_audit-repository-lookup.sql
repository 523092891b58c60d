-- Up Migration

-- Security teams look up a repository however it was spelt: GitHub and GitLab paths are
-- case-insensitive, so audit events are found by the lower-case path.
DROP INDEX audit_events_repository;
CREATE INDEX audit_events_repository_lower ON audit_events (lower(repository), seq)
  WHERE repository IS NOT NULL;
