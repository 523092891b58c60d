// In-memory state of one Git host stand-in (GitHub or GitLab): its repositories and deploy keys.
// The SSH git server asks it who may read or write which repository, so the REST API and the
// SSH transport always agree.

export interface SandboxRepository {
  id: number;
  /** `owner/name`, or a GitLab namespace path such as `group/sub/name`. */
  path: string;
  /** Absolute path of the bare git repository that the SSH server serves. */
  bareDir: string;
  createdAt: Date;
}

export interface SandboxDeployKey {
  id: number;
  repositoryId: number;
  title: string;
  /** `<type> <base64>` with no comment, as the hosts return it. */
  key: string;
  readOnly: boolean;
  createdAt: Date;
  expiresAt: Date | null;
}

export type AccessDecision = 'allowed' | 'unknown-key' | 'no-access' | 'read-only';

export interface HostState {
  readonly name: string;
  addRepository(path: string, bareDir: string): SandboxRepository;
  findRepository(idOrPath: string | number): SandboxRepository | undefined;
  listRepositories(): SandboxRepository[];
  addKey(input: Omit<SandboxDeployKey, 'id' | 'createdAt'>): SandboxDeployKey;
  /**
   * Puts an existing key on one more repository under the same id, as GitLab's `DeployKeysProject`
   * does; the key's title, text, creation and expiry are shared, write access is per repository.
   */
  linkKey(keyId: number, repositoryId: number, readOnly: boolean): SandboxDeployKey | undefined;
  /** Every repository's record of one key id, oldest link first. */
  keyLinks(keyId: number): SandboxDeployKey[];
  /** A new title applies to every link of the key; write access only to this repository's link. */
  updateKey(
    repositoryId: number,
    keyId: number,
    changes: { title?: string | undefined; readOnly?: boolean | undefined },
  ): SandboxDeployKey | undefined;
  getKey(repositoryId: number, keyId: number): SandboxDeployKey | undefined;
  listKeys(repositoryId: number): SandboxDeployKey[];
  deleteKey(repositoryId: number, keyId: number): boolean;
  /** Every key on every repository of this host carrying this public key. */
  keysWithBlob(keyBlob: string): SandboxDeployKey[];
  /** May this public key (`<type> <base64>`) authenticate at all right now? */
  isUsableKey(keyBlob: string, now?: Date): boolean;
  authorize(keyBlob: string, repositoryPath: string, write: boolean, now?: Date): AccessDecision;
}

/** `ssh-ed25519 AAAA… comment` → `ssh-ed25519 AAAA…` */
export function normalizeKeyBlob(key: string): string {
  const [type, data] = key.trim().split(/\s+/);
  return `${type ?? ''} ${data ?? ''}`;
}

function isLive(key: SandboxDeployKey, now: Date): boolean {
  return key.expiresAt === null || key.expiresAt.getTime() > now.getTime();
}

export function createHostState(name: string): HostState {
  const repositories = new Map<number, SandboxRepository>();
  // One record per key and repository; GitHub keys have one each, GitLab keys may have several.
  const keys = new Map<string, SandboxDeployKey>();
  const slot = (repositoryId: number, keyId: number) => `${repositoryId}:${keyId}`;
  const keyLinks = (keyId: number) => [...keys.values()].filter((key) => key.id === keyId);
  let nextRepositoryId = 1;
  // Real hosts hand out large, increasing ids. A random start keeps a restarted sandbox from reusing
  // an id that an older run recorded in Postgres.
  let nextKeyId = 1_000_000 + Math.floor(Math.random() * 1_000_000_000);

  const findRepository = (idOrPath: string | number) => {
    if (typeof idOrPath === 'number' || /^\d+$/.test(idOrPath)) return repositories.get(Number(idOrPath));
    const wanted = idOrPath.toLowerCase();
    for (const repository of repositories.values()) {
      if (repository.path.toLowerCase() === wanted) return repository;
    }
    return undefined;
  };

  const keysWithBlob = (keyBlob: string) => {
    const blob = normalizeKeyBlob(keyBlob);
    return [...keys.values()].filter((key) => key.key === blob);
  };

  return {
    name,
    addRepository(path, bareDir) {
      const repository = { id: nextRepositoryId++, path, bareDir, createdAt: new Date() };
      repositories.set(repository.id, repository);
      return repository;
    },
    findRepository,
    listRepositories: () => [...repositories.values()],
    addKey(input) {
      const key: SandboxDeployKey = {
        ...input,
        key: normalizeKeyBlob(input.key),
        id: nextKeyId++,
        createdAt: new Date(),
      };
      keys.set(slot(key.repositoryId, key.id), key);
      return key;
    },
    linkKey(keyId, repositoryId, readOnly) {
      const existing = keys.get(slot(repositoryId, keyId));
      if (existing) return existing;
      const [first] = keyLinks(keyId);
      if (!first || !repositories.has(repositoryId)) return undefined;
      const linked = { ...first, repositoryId, readOnly };
      keys.set(slot(repositoryId, keyId), linked);
      return linked;
    },
    keyLinks,
    updateKey(repositoryId, keyId, changes) {
      const target = keys.get(slot(repositoryId, keyId));
      if (!target) return undefined;
      if (changes.title !== undefined) for (const link of keyLinks(keyId)) link.title = changes.title;
      if (changes.readOnly !== undefined) target.readOnly = changes.readOnly;
      return target;
    },
    getKey: (repositoryId, keyId) => keys.get(slot(repositoryId, keyId)),
    listKeys: (repositoryId) =>
      [...keys.values()].filter((key) => key.repositoryId === repositoryId).sort((a, b) => a.id - b.id),
    deleteKey: (repositoryId, keyId) => keys.delete(slot(repositoryId, keyId)),
    keysWithBlob,
    isUsableKey: (keyBlob, now = new Date()) => keysWithBlob(keyBlob).some((key) => isLive(key, now)),
    authorize(keyBlob, repositoryPath, write, now = new Date()) {
      const live = keysWithBlob(keyBlob).filter((key) => isLive(key, now));
      if (live.length === 0) return 'unknown-key';
      const repository = findRepository(repositoryPath);
      const onRepository = live.filter((key) => key.repositoryId === repository?.id);
      if (!repository || onRepository.length === 0) return 'no-access';
      if (write && onRepository.every((key) => key.readOnly)) return 'read-only';
      return 'allowed';
    },
  };
}
