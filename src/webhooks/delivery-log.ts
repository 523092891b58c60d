// Which webhook deliveries were already acted on. Claiming a delivery id is one INSERT, so two
// replicas receiving the same delivery at once cannot both act on it.
import type pg from 'pg';
import { coalesced } from '../coalesced.ts';

export interface DeliveryLog {
  /** True when this delivery id is new for the host (and now taken), false when seen before. */
  claim(hostId: string, deliveryId: string, event: string, at: Date): Promise<boolean>;
  settle(hostId: string, deliveryId: string, outcome: string): Promise<void>;
  /** Forgets a claim whose action failed, so a retry of the delivery is acted on. */
  release(hostId: string, deliveryId: string): Promise<void>;
  /** Drops deliveries received before `before`; platforms stop resending long before. */
  prune(before: Date): Promise<number>;
}

interface Claim {
  hostId: string;
  deliveryId: string;
  event: string;
  at: Date;
}

const deliveryKey = (hostId: string, deliveryId: string) => `${hostId}\n${deliveryId}`;

// Claims and settlements that arrive together (a burst of job ends) go as one statement each
// (src/coalesced.ts). Within one batch, a delivery id claimed twice is claimed by the first.
function claimsInBatches(pool: pg.Pool) {
  return coalesced(async (claims: Claim[]) => {
    const { rows } = await pool.query<{ host_id: string; delivery_id: string }>(
      `INSERT INTO webhook_deliveries (host_id, delivery_id, event, received_at)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
       ON CONFLICT DO NOTHING RETURNING host_id, delivery_id`,
      [
        claims.map((claim) => claim.hostId),
        claims.map((claim) => claim.deliveryId),
        claims.map((claim) => claim.event),
        claims.map((claim) => claim.at),
      ],
    );
    const taken = new Set(rows.map((row) => deliveryKey(row.host_id, row.delivery_id)));
    return claims.map((claim) => taken.delete(deliveryKey(claim.hostId, claim.deliveryId)));
  });
}

function settlementsInBatches(pool: pg.Pool) {
  return coalesced(async (settled: { hostId: string; deliveryId: string; outcome: string }[]) => {
    await pool.query(
      `UPDATE webhook_deliveries AS d SET outcome = s.outcome
       FROM unnest($1::text[], $2::text[], $3::text[]) AS s(host_id, delivery_id, outcome)
       WHERE d.host_id = s.host_id AND d.delivery_id = s.delivery_id`,
      [
        settled.map((item) => item.hostId),
        settled.map((item) => item.deliveryId),
        settled.map((item) => item.outcome),
      ],
    );
    return settled.map(() => undefined);
  });
}

export function createDeliveryLog(pool: pg.Pool): DeliveryLog {
  const claim = claimsInBatches(pool);
  const settle = settlementsInBatches(pool);
  return {
    claim: (hostId, deliveryId, event, at) => claim({ hostId, deliveryId, event, at }),
    settle: (hostId, deliveryId, outcome) => settle({ hostId, deliveryId, outcome }),
    async release(hostId, deliveryId) {
      await pool.query('DELETE FROM webhook_deliveries WHERE host_id = $1 AND delivery_id = $2', [
        hostId,
        deliveryId,
      ]);
    },
    async prune(before) {
      const result = await pool.query('DELETE FROM webhook_deliveries WHERE received_at < $1', [before]);
      return result.rowCount ?? 0;
    },
  };
}
