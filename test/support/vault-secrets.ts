// What Vault holds at a key's path, read the way the service's own client reads it, for tests that
// check a secret is there, names its key, or is gone.
import { unlessMissing, type VaultClient } from '../../src/vault/vault-client.ts';

/** The keyId in the custom metadata at `<mount>/metadata/<path>`; undefined when nothing is there. */
export async function secretOwner(
  vault: VaultClient,
  mount: string,
  path: string,
): Promise<string | undefined> {
  const body = await unlessMissing(
    vault.read(`${mount}/metadata/${path}`, { what: `metadata read ${path}` }),
  );
  const keyId = (body as { data?: { custom_metadata?: { keyId?: unknown } | null } } | undefined)?.data
    ?.custom_metadata?.keyId;
  return typeof keyId === 'string' ? keyId : undefined;
}

/** Whether Vault has any entry (metadata, with or without data) at the path. */
export async function secretExists(vault: VaultClient, mount: string, path: string): Promise<boolean> {
  return (
    (await unlessMissing(vault.read(`${mount}/metadata/${path}`, { what: `metadata read ${path}` }))) !==
    undefined
  );
}
