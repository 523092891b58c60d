// What the audit API reads: pages and exports of the log, the chain check and the latest signed
// checkpoint, over the one database client and the checkpoint store.
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { type ExportFormat, exportAuditEvents } from './audit-export.ts';
import { type AuditFilter, type AuditOrder, type AuditPage, listAuditEvents } from './audit-query.ts';
import type { AuditVerifier, TimedVerification } from './audit-verifier.ts';
import type { AuditCheckpoints } from './checkpoint.ts';
import type { AuditCheckpoint } from './checkpoint-signing.ts';

export type LatestCheckpoint =
  | { found: 'disabled' }
  | { found: 'none' }
  | { found: 'checkpoint'; checkpoint: AuditCheckpoint & { valid: boolean } };

export interface AuditServiceDeps {
  db: Kysely<Database>;
  checkpoints: AuditCheckpoints;
  verifier: AuditVerifier;
}

export function createAuditService(deps: AuditServiceDeps) {
  return {
    /** One page of matching events; `after` is the previous page's nextCursor. */
    list(
      filter: AuditFilter,
      page: { after?: string; order: AuditOrder; limit: number },
    ): Promise<AuditPage> {
      return listAuditEvents(deps.db, filter, page);
    },

    /** The matching events as text chunks of the format, up to the head as it is now. */
    export(filter: AuditFilter, format: ExportFormat): AsyncGenerator<string> {
      return exportAuditEvents(deps.db, filter, format);
    },

    /** The chain walked (or a recent walk reused) and checked against the latest checkpoint. */
    verify(): Promise<TimedVerification> {
      return deps.verifier.verify();
    },

    /** The newest checkpoint with whether its signature verifies, or why there is none. */
    async latestCheckpoint(): Promise<LatestCheckpoint> {
      if (!deps.checkpoints.enabled) return { found: 'disabled' };
      const checkpoint = await deps.checkpoints.latest();
      if (!checkpoint) return { found: 'none' };
      return {
        found: 'checkpoint',
        checkpoint: { ...checkpoint, valid: deps.checkpoints.isValid(checkpoint) },
      };
    },
  };
}

export type AuditService = ReturnType<typeof createAuditService>;
