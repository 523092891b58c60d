// The annotation contract, version 2. A Job asks for keys with
//   deploykey.dev/keys: "github:acme/models, gitlab:acme/datasets"
//   deploykey.dev/ttl:  "6h"            (optional; seconds or a Go-style duration)
// and the controller answers on the Job with deploykey.dev/key-ids (JSON object "host:repo" → key id)
// or deploykey.dev/denied (the reason). Version 2 adds what the Job's manifest may name in advance:
// each key's Vault path <prefix>/kubernetes/<namespace>/<job>/<host>/<repository> and the Job's
// role deploykey-job.<namespace>.<job> (src/vault/kubernetes-grants.ts). An incompatible contract
// would use new annotation names.
import { parseDuration } from '../cli/duration.ts';
import { HOST_ID } from '../model/values.ts';

export const ANNOTATION_PREFIX = 'deploykey.dev';
export const KEYS_ANNOTATION = `${ANNOTATION_PREFIX}/keys`;
export const TTL_ANNOTATION = `${ANNOTATION_PREFIX}/ttl`;
export const KEY_IDS_ANNOTATION = `${ANNOTATION_PREFIX}/key-ids`;
export const DENIED_ANNOTATION = `${ANNOTATION_PREFIX}/denied`;
const MAX_KEYS_PER_JOB = 16;

export interface RequestedKey {
  provider: string;
  repository: string;
}

export type KeyRequest =
  | { ok: true; keys: RequestedKey[]; ttlSeconds: number | undefined }
  | { ok: false; reason: string };

const ENTRY = new RegExp(`^(${HOST_ID}):([^\\s,:]+)$`);

export function wantsKeys(annotations: Record<string, string> | undefined): boolean {
  return typeof annotations?.[KEYS_ANNOTATION] === 'string';
}

export function parseKeyRequest(annotations: Record<string, string>): KeyRequest {
  const entries = (annotations[KEYS_ANNOTATION] ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) return { ok: false, reason: `${KEYS_ANNOTATION} names no repository` };
  if (entries.length > MAX_KEYS_PER_JOB) {
    return { ok: false, reason: `${KEYS_ANNOTATION} names more than ${MAX_KEYS_PER_JOB} repositories` };
  }
  const keys: RequestedKey[] = [];
  for (const entry of entries) {
    const match = ENTRY.exec(entry);
    if (!match) return { ok: false, reason: `"${entry}" is not of the form host:owner/repository` };
    if (!keys.some((k) => k.provider === match[1] && k.repository === match[2])) {
      keys.push({ provider: match[1] as string, repository: match[2] as string });
    }
  }
  const ttl = annotations[TTL_ANNOTATION];
  if (ttl === undefined) return { ok: true, keys, ttlSeconds: undefined };
  const ttlSeconds = parseDuration(ttl);
  if (ttlSeconds === undefined || ttlSeconds <= 0) {
    return { ok: false, reason: `${TTL_ANNOTATION} "${ttl}" is not a duration such as 3600, 45m or 6h` };
  }
  return { ok: true, keys, ttlSeconds };
}

/** The job id keys are recorded under: derivable from namespace and name alone (namespaces have no ':'). */
export const jobIdOf = (namespace: string, name: string) => `${namespace}:${name}`;
