// The contract of the Vault KV v2 store that holds each key's private half (and nothing else does).
import { DomainError } from '../errors.ts';

export interface KeySecret {
  privateKey: string;
  publicKey: string;
  knownHosts: string;
  fingerprint: string;
}

export interface WrappedSecret {
  token: string;
  accessor: string;
}

export interface SecretMetadata {
  keyId: string;
  expiresAt: Date;
}

export interface KubernetesGrant {
  keyId: string;
  namespace: string;
  serviceAccount: string;
  /** Lifetime of the Vault tokens the role hands out; never beyond the key's own. */
  tokenTtlSeconds: number;
  /** The `aud` the service account token must carry, so a token minted for anything else is refused. */
  audience: string;
}

/** Read access to every key of one Kubernetes Job, for the pods of its service account. */
export interface JobGrant {
  namespace: string;
  jobName: string;
  serviceAccount: string;
  /** Lifetime of the Vault tokens the role hands out; never beyond the key's own. */
  tokenTtlSeconds: number;
  /** The `aud` the service account token must carry. */
  audience: string;
}

export interface SecretStore {
  readonly mount: string;
  /**
   * `<pathPrefix>/<ownerScope>/<jobId>/<provider>/<repository>`: the path below the mount, without
   * `data/`. `ownerScope` keeps owners apart (src/keys/ownership.ts); `repository` is its identity.
   */
  pathFor(ownerScope: string, jobId: string, provider: string, repository: string): string;
  /**
   * `<pathPrefix>/kubernetes/<namespace>/<jobName>/<provider>/<repository>`: the path of a key the
   * controller issues for a Job, derivable from the Job alone so its manifest can name it.
   */
  jobPathFor(namespace: string, jobName: string, provider: string, repository: string): string;
  /**
   * Writes the secret as fields `ssh-privatekey`, `ssh-publickey`, `known_hosts`, `fingerprint`
   * (the layout of a kubernetes.io/ssh-auth Secret) with custom_metadata keyId and expiresAt.
   */
  write(path: string, secret: KeySecret, metadata: SecretMetadata): Promise<void>;
  /**
   * A single-use response-wrapping token whose unwrap yields the secret written at `path`, and its
   * accessor, which can revoke it but never unwrap it.
   */
  wrap(path: string, ttlSeconds: number): Promise<WrappedSecret>;
  /** Revokes a wrapping token by its accessor, so it can no longer be unwrapped; one already gone counts as revoked. */
  revokeWrapToken(accessor: string): Promise<void>;
  /**
   * Destroys every version and the metadata at `path`. When `keyId` is given, a secret whose
   * custom_metadata names another key is left alone. A missing secret counts as destroyed.
   */
  destroy(path: string, keyId?: string): Promise<'destroyed' | 'already-gone' | 'not-ours'>;
  /** The secret at `path`, or undefined when there is none (an idempotent replay re-delivers it). */
  read(path: string): Promise<KeySecret | undefined>;
  /**
   * Lets exactly one Kubernetes service account read exactly this secret: a Vault ACL policy and a
   * Kubernetes-auth role, both named `deploykey-<keyId>`. Returns the role name.
   */
  grantKubernetesRead(path: string, grant: KubernetesGrant): Promise<string>;
  /** Removes that policy and role; ones already gone count as removed. */
  removeKubernetesRead(keyId: string): Promise<void>;
  /**
   * Lets one service account read every key of one Job: a Vault ACL policy (read on the Job's
   * folder, a glob) and a Kubernetes-auth role, both named `deploykey-job.<namespace>.<jobName>`.
   * Returns the role name. Writing it again for another key of the Job changes nothing but the TTL.
   */
  grantJobRead(grant: JobGrant): Promise<string>;
  /** Removes the Job's policy and role; ones already gone count as removed. */
  removeJobRead(namespace: string, jobName: string): Promise<void>;
}

export type VaultErrorKind = 'forbidden' | 'unavailable' | 'timeout' | 'invalid';

// What a caller may learn of each failure; paths and Vault's own words stay in `message`, for logs.
const DETAILS: Record<VaultErrorKind, string> = {
  forbidden: 'Vault refused the service',
  unavailable: 'Vault is unavailable',
  timeout: 'Vault did not answer in time',
  invalid: 'Vault refused the request',
};

/** Vault failed or refused; `code` is `vault-<kind>`. */
export class VaultError extends DomainError {
  readonly kind: VaultErrorKind;
  readonly status: number | undefined;

  constructor(kind: VaultErrorKind, message: string, options: { status?: number; cause?: unknown } = {}) {
    super(`vault-${kind}`, message, { detail: DETAILS[kind], cause: options.cause });
    this.name = 'VaultError';
    this.kind = kind;
    this.status = options.status;
  }
}
