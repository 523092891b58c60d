import type { V1Job } from '@kubernetes/client-node';

/** `Complete` or `Failed` once the Job has ended, else undefined. */
export function endOf(job: V1Job): 'Complete' | 'Failed' | undefined {
  for (const condition of job.status?.conditions ?? []) {
    if (condition.status !== 'True') continue;
    if (condition.type === 'Complete' || condition.type === 'Failed') return condition.type;
  }
  return undefined;
}
