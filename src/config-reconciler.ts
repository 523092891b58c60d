// The reconciler's periods, and how much of a host's API quota its sweep of CI jobs may spend.
// Part of the config file schema in src/config.ts.
import Type from 'typebox';

export const ReconcilerSchema = Type.Object(
  {
    periodSeconds: Type.Integer({ minimum: 1, default: 30 }),
    pendingTimeoutSeconds: Type.Integer({ minimum: 1, default: 120 }),
    orphanScanSeconds: Type.Integer({ minimum: 1, default: 300 }),
    orphanLookbackSeconds: Type.Integer({ minimum: 60, default: 172_800 }),
    sweepGraceSeconds: Type.Integer({
      minimum: 0,
      default: 60,
      description:
        'A key bound to a CI job is asked about once it is this old; younger ones wait for webhooks',
    }),
    sweepJobsPerHost: Type.Integer({
      minimum: 0,
      maximum: 1_000,
      default: 20,
      description: 'Most CI jobs asked about per host in one reconciler pass, one request each (0: no sweep)',
    }),
  },
  { additionalProperties: false, default: {} },
);
