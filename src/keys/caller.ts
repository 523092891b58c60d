/** Who is asking. The authorization issue adds OIDC callers; the domain only needs these fields. */
export interface Caller {
  /** Stable identity keys are recorded under, e.g. `token:ci-runner`. */
  id: string;
  /** Human-readable actor for the audit log. */
  actor: string;
  role: 'issuer' | 'auditor' | 'admin';
  details: Record<string, unknown>;
}

export const SYSTEM_ACTOR = 'system:deploykey-rotator';
