-- Up Migration

-- Webhook deliveries already acted on, by the host's delivery id (GitHub `X-GitHub-Delivery`, GitLab
-- `Idempotency-Key`). Platforms deliver at least once and resend on request; a delivery id seen
-- before is answered without acting again. Nothing secret is stored: ids, event names, outcome.
CREATE TABLE webhook_deliveries (
  host_id text NOT NULL,
  delivery_id text NOT NULL,
  event text NOT NULL,
  outcome text,
  received_at timestamptz NOT NULL,
  PRIMARY KEY (host_id, delivery_id)
);

CREATE INDEX webhook_deliveries_received_at ON webhook_deliveries (received_at);
