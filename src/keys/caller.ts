import type { PolicySubject } from '../model/access.ts';
import type { Role } from '../model/schemas.ts';

/** Who is asking, as the domain needs it; produced by authentication. */
export interface Caller {
  /** Stable identity keys are recorded under, e.g. `token:ci-runner` or `oidc:github:repo:acme/models:ref:…`. */
  id: string;
  /** Human-readable actor for the audit log. */
  actor: string;
  role: Role;
  subject: PolicySubject;
  /** Recorded with each key (never secret): token name, or issuer, subject and platform claims. */
  details: Record<string, unknown>;
}

export const SYSTEM_ACTOR = 'system:deploykey-rotator';
