// Gitea's deploy-key model (models/asymkey/ssh_key_deploy.go): a deploy key links a repository to a
// shared public key. The same public key may be a deploy key of several repositories (each link has
// its own id, title and read-only flag, all sharing one `key_id`), but never one repository twice,
// never under a title that repository already uses, and never when it is some user's SSH key.
import type { HostState, SandboxDeployKey } from '../shared/host-state.ts';
import type { CheckedKey } from './public-keys.ts';

export interface GiteaPublicKey {
  /** `key_id` in the API, the id the SSH server names. */
  id: number;
  /** The title of the first deploy key that brought this key in. */
  name: string;
  content: string;
  blob: string;
  fingerprint: string;
}

export interface GiteaDeployKeys {
  add(input: {
    repositoryId: number;
    title: string;
    key: CheckedKey;
    readOnly: boolean;
  }): SandboxDeployKey | { error: string };
  /** The public key behind a deploy key (or behind a key blob offered over SSH). */
  publicKeyOf(keyBlob: string): GiteaPublicKey | undefined;
  /** Removes the link; the public key goes with its last link. `false` if no such key on the repository. */
  remove(repositoryId: number, keyId: number): boolean;
  /** Registers a user's SSH key, which Gitea then refuses as a deploy key. */
  addUserKey(key: CheckedKey): void;
}

export function createGiteaDeployKeys(state: HostState): GiteaDeployKeys {
  const publicKeys = new Map<string, GiteaPublicKey>();
  const userKeyFingerprints = new Set<string>();
  // Like Gitea's autoincrement ids, but from a random start so a restarted sandbox does not reuse one.
  let nextPublicKeyId = 1_000 + Math.floor(Math.random() * 1_000_000);

  return {
    add({ repositoryId, title, key, readOnly }) {
      if (userKeyFingerprints.has(key.fingerprint))
        return { error: 'Key content has been used as non-deploy key' };
      // Gitea looks the key up by fingerprint, which names the same key as its blob.
      const existing = publicKeys.get(key.blob);
      const onRepository = state.listKeys(repositoryId);
      if (existing && onRepository.some((deployKey) => deployKey.key === existing.blob)) {
        return { error: 'This key has already been added to this repository' };
      }
      if (onRepository.some((deployKey) => deployKey.title === title)) {
        return { error: 'A key with the same name already exists' };
      }
      if (!existing) {
        const publicKey = { id: nextPublicKeyId++, name: title, ...key };
        publicKeys.set(publicKey.blob, publicKey);
      }
      return state.addKey({ repositoryId, title, key: key.blob, readOnly, expiresAt: null });
    },
    publicKeyOf: (keyBlob) => publicKeys.get(keyBlob),
    remove(repositoryId, keyId) {
      const deployKey = state.getKey(repositoryId, keyId);
      if (!deployKey || !state.deleteKey(repositoryId, keyId)) return false;
      if (state.keysWithBlob(deployKey.key).length === 0) publicKeys.delete(deployKey.key);
      return true;
    },
    addUserKey(key) {
      userKeyFingerprints.add(key.fingerprint);
    },
  };
}
