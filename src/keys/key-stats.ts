// How issuing and revoking went over a time range, per hour, computed in Postgres so the console
// gets a few dozen numbers instead of every key.
import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/schema.ts';

export interface HourStats {
  start: string;
  issued: number;
  revoked: number;
  /** Seconds from the revoke's trigger (the job's end, a request, or expiry) to revoked. */
  latencyP50Seconds: number | null;
  latencyP99Seconds: number | null;
}

export interface KeyStats {
  from: string;
  to: string;
  hours: HourStats[];
  latency: { count: number; p50Seconds: number | null; p99Seconds: number | null };
}

const seconds = (value: unknown) => (value === null || value === undefined ? null : Number(value));

// The trigger of a revoke: its expiry for an expired key, otherwise when it was asked for (a job's
// completion, a manual revoke), and never later than the expiry it was due at.
const LATENCY = sql`extract(epoch FROM revoked_at - LEAST(COALESCE(revoke_requested_at, expires_at), expires_at))`;

export async function keyStats(db: Kysely<Database>, from: Date, to: Date): Promise<KeyStats> {
  const hourly = await sql<{
    start: Date;
    issued: string;
    revoked: string;
    p50: string | null;
    p99: string | null;
  }>`
    WITH hours AS (
      SELECT generate_series(date_trunc('hour', ${from}::timestamptz),
                             ${to}::timestamptz - interval '1 microsecond', interval '1 hour') AS start
    ),
    issued AS (
      SELECT date_trunc('hour', activated_at) AS start, count(*) AS n FROM deploy_keys
      WHERE activated_at >= ${from} AND activated_at < ${to} GROUP BY 1
    ),
    revoked AS (
      SELECT date_trunc('hour', revoked_at) AS start, count(*) AS n,
             percentile_cont(0.5) WITHIN GROUP (ORDER BY ${LATENCY}) AS p50,
             percentile_cont(0.99) WITHIN GROUP (ORDER BY ${LATENCY}) AS p99
      FROM deploy_keys WHERE status = 'revoked' AND revoked_at >= ${from} AND revoked_at < ${to} GROUP BY 1
    )
    SELECT hours.start, COALESCE(issued.n, 0) AS issued, COALESCE(revoked.n, 0) AS revoked,
           revoked.p50, revoked.p99
    FROM hours LEFT JOIN issued USING (start) LEFT JOIN revoked USING (start)
    ORDER BY hours.start`.execute(db);
  const overall = await sql<{ count: string; p50: string | null; p99: string | null }>`
    SELECT count(*) AS count,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY ${LATENCY}) AS p50,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY ${LATENCY}) AS p99
    FROM deploy_keys WHERE status = 'revoked' AND revoked_at >= ${from} AND revoked_at < ${to}`.execute(db);
  const total = overall.rows[0]!;
  return {
    from: from.toISOString(),
    to: to.toISOString(),
    hours: hourly.rows.map((row) => ({
      start: new Date(row.start).toISOString(),
      issued: Number(row.issued),
      revoked: Number(row.revoked),
      latencyP50Seconds: seconds(row.p50),
      latencyP99Seconds: seconds(row.p99),
    })),
    latency: { count: Number(total.count), p50Seconds: seconds(total.p50), p99Seconds: seconds(total.p99) },
  };
}
