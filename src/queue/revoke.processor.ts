import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import Value from 'typebox/value';
import type { KeyService } from '../keys/key.service.ts';
import { RevokeStepError } from '../keys/key-revoke.ts';
import type { Logger } from '../log.ts';
import { REVOKE_BACKOFF, REVOKE_QUEUE, RevokeJobData, revokeBackoffMs } from './jobs.ts';

export interface RevokeWorkerOptions {
  connection: Redis;
  prefix: string;
  concurrency: number;
  lockSeconds: number;
  stalledCheckSeconds: number;
  keyService: Pick<KeyService, 'performRevoke' | 'revokeAttemptsSpent'>;
  logger: Logger;
}

/** The worker only validates the payload and calls the key service; all logic lives there. */
export function createRevokeWorker(options: RevokeWorkerOptions): Worker<RevokeJobData> {
  const { keyService, logger } = options;
  const worker = new Worker<RevokeJobData>(
    REVOKE_QUEUE,
    async (job: Job<RevokeJobData>) => {
      if (!Value.Check(RevokeJobData, job.data)) {
        throw new UnrecoverableError('revoke job payload does not match its schema');
      }
      const outcome = await keyService.performRevoke(job.data.keyId);
      logger.info({ keyId: job.data.keyId, outcome, attempt: job.attemptsMade + 1 }, 'revoke job done');
      return outcome;
    },
    {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: options.concurrency,
      lockDuration: options.lockSeconds * 1000,
      stalledInterval: options.stalledCheckSeconds * 1000,
      settings: {
        backoffStrategy: (attemptsMade, type, error) => {
          if (type !== REVOKE_BACKOFF) return 0;
          return revokeBackoffMs(
            attemptsMade,
            error instanceof RevokeStepError ? error.retryAfterSeconds : undefined,
          );
        },
      },
    },
  );

  worker.on('failed', (job, error) => {
    if (!job) return;
    const failure = error instanceof RevokeStepError ? error.failure : 'unexpected error';
    const spent = job.attemptsMade >= (job.opts.attempts ?? 1);
    logger.warn(
      { keyId: job.data.keyId, failure, attempt: job.attemptsMade, spent },
      'revoke attempt failed',
    );
    if (spent) {
      keyService.revokeAttemptsSpent(job.data.keyId, failure).catch((auditError: Error) => {
        logger.error({ keyId: job.data.keyId, err: auditError.message }, 'could not record spent revoke');
      });
    }
  });
  worker.on('error', (error) => logger.warn({ err: error.message }, 'revoke worker connection problem'));
  return worker;
}
