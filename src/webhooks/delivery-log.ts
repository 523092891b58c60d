// Which webhook deliveries were already acted on. Claiming a delivery id is one INSERT, so two
// replicas receiving the same delivery at once cannot both act on it.
import type pg from 'pg';

export interface DeliveryLog {
  /** True when this delivery id is new for the host (and now taken), false when seen before. */
  claim(hostId: string, deliveryId: string, event: string, at: Date): Promise<boolean>;
  settle(hostId: string, deliveryId: string, outcome: string): Promise<void>;
  /** Forgets a claim whose action failed, so a retry of the delivery is acted on. */
  release(hostId: string, deliveryId: string): Promise<void>;
  /** Drops deliveries received before `before`; platforms stop resending long before. */
  prune(before: Date): Promise<number>;
}

export function createDeliveryLog(pool: pg.Pool): DeliveryLog {
  return {
    async claim(hostId, deliveryId, event, at) {
      const result = await pool.query(
        `INSERT INTO webhook_deliveries (host_id, delivery_id, event, received_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
        [hostId, deliveryId, event, at],
      );
      return result.rowCount === 1;
    },
    async settle(hostId, deliveryId, outcome) {
      await pool.query('UPDATE webhook_deliveries SET outcome = $3 WHERE host_id = $1 AND delivery_id = $2', [
        hostId,
        deliveryId,
        outcome,
      ]);
    },
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
