// GitLab deploy key semantics: request coercion as Grape answers it, model validation as the
// `Key`/`DeployKeysProject` ActiveRecord models answer it, and the `DeployKeysProject` entity.
import sshpk from 'sshpk';
import { normalizeKeyBlob, type SandboxDeployKey, type SandboxRepository } from '../shared/host-state.ts';

export interface DeployKeyEntity {
  id: number;
  title: string;
  created_at: string;
  expires_at: string | null;
  key: string;
  usage_type: 'auth_and_signing';
  fingerprint: string;
  fingerprint_sha256: string;
  can_push: boolean;
}

export interface CreateParams {
  title: string;
  key: string;
  canPush: boolean;
  expiresAt: Date | null;
}

const SUPPORTED_ALGORITHMS = [
  'ssh-rsa',
  'ssh-dss',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'ssh-ed25519',
  'sk-ecdsa-sha2-nistp256@openssh.com',
  'sk-ssh-ed25519@openssh.com',
];
// DSA keys are forbidden by default key restrictions on current GitLab releases.
const FORBIDDEN_TYPE_MESSAGE = 'type is forbidden. Must be RSA, ECDSA, ED25519, ECDSA_SK, or ED25519_SK';
const TRUE_VALUES = new Set(['true', '1', 't', 'y', 'yes', 'on']);
const FALSE_VALUES = new Set(['false', '0', 'f', 'n', 'no', 'off']);

export function parsePublicKey(text: string): sshpk.Key | undefined {
  try {
    return sshpk.parseKey(text, 'ssh');
  } catch {
    return undefined;
  }
}

/**
 * Mirrors `Gitlab::SSHPublicKey.sanitize`: joins base64 split over whitespace and keeps only the
 * first word of the comment; an unparsable key is kept as sent.
 */
export function sanitizeKey(raw: string): string {
  const [type, ...parts] = raw.trim().split(/\s+/);
  if (parts.length === 0) return raw;
  let content = `${type} `;
  for (const [index, part] of parts.entries()) {
    content += part;
    if (parsePublicKey(content)) return [content, parts[index + 1]].filter(Boolean).join(' ');
  }
  return raw;
}

export function fingerprints(key: sshpk.Key): { md5: string; sha256: string } {
  return { md5: key.fingerprint('md5').toString('hex'), sha256: key.fingerprint('sha256').toString() };
}

export function renderDeployKey(record: SandboxDeployKey, storedKey: string): DeployKeyEntity {
  const parsed = parsePublicKey(storedKey) ?? parsePublicKey(record.key);
  const prints = parsed ? fingerprints(parsed) : { md5: '', sha256: '' };
  return {
    id: record.id,
    title: record.title,
    created_at: record.createdAt.toISOString(),
    expires_at: record.expiresAt ? record.expiresAt.toISOString() : null,
    key: storedKey,
    usage_type: 'auth_and_signing',
    fingerprint: prints.md5,
    fingerprint_sha256: prints.sha256,
    can_push: !record.readOnly,
  };
}

/** `Entities::ProjectIdentity`, as the admin deploy key list names each project. */
export function renderProjectIdentity(project: SandboxRepository) {
  const segments = project.path.split('/');
  return {
    id: project.id,
    description: null,
    name: segments.at(-1) ?? project.path,
    name_with_namespace: segments.join(' / '),
    path: segments.at(-1) ?? project.path,
    path_with_namespace: project.path,
    created_at: project.createdAt.toISOString(),
  };
}

function coerceString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

/** Grape `Integer` coercion; `undefined` when the value is not an integer. */
export function coerceInteger(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && /^[-+]?\d+$/.test(value.trim())) return Number(value.trim());
  return undefined;
}

/** Grape `Boolean` coercion; `undefined` when the value is not a boolean. */
export function coerceBoolean(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  const text = coerceString(value)?.toLowerCase();
  if (text !== undefined && TRUE_VALUES.has(text)) return true;
  if (text !== undefined && FALSE_VALUES.has(text)) return false;
  return undefined;
}

/**
 * Grape declares `requires :key`, `requires :title`, `optional :can_push, Boolean`,
 * `optional :expires_at, DateTime`; every failure is joined into one `{"error": "..."}` string.
 */
export function coerceCreateParams(params: Record<string, unknown>): CreateParams | { error: string } {
  const errors: string[] = [];
  const present = (name: string) => params[name] !== undefined && params[name] !== null;

  const key = coerceString(params.key);
  if (!present('key')) errors.push('key is missing');
  else if (key === undefined) errors.push('key is invalid');
  const title = coerceString(params.title);
  if (!present('title')) errors.push('title is missing');
  else if (title === undefined) errors.push('title is invalid');
  const canPush = present('can_push') ? coerceBoolean(params.can_push) : false;
  if (canPush === undefined) errors.push('can_push is invalid');
  let expiresAt: Date | null = null;
  if (present('expires_at')) {
    const text = coerceString(params.expires_at);
    expiresAt = text === undefined || text.trim() === '' ? new Date(Number.NaN) : new Date(text);
    if (Number.isNaN(expiresAt.getTime())) errors.push('expires_at is invalid');
  }

  if (errors.length > 0) return { error: errors.join(', ') };
  return { title: title ?? '', key: (key ?? '').trim(), canPush: canPush ?? false, expiresAt };
}

/**
 * The ActiveRecord validation errors for a new deploy key, keyed as the nested
 * `deploy_key_attributes` report them (`deploy_key.<attribute>`); empty when the key is valid.
 */
export function validateNewKey(
  input: CreateParams,
  /** Is this public key (`<type> <base64>`) already registered anywhere on the host? */
  fingerprintTaken: (keyBlob: string) => boolean,
  now: Date,
): Record<string, string[]> {
  const errors: Record<string, string[]> = {};
  const add = (attribute: string, message: string) => {
    const name = `deploy_key.${attribute}`;
    errors[name] = [...(errors[name] ?? []), message];
  };

  if (input.title.trim() === '') add('title', "can't be blank");
  if (input.title.length > 255) add('title', 'is too long (maximum is 255 characters)');

  const stored = sanitizeKey(input.key);
  const parsed = parsePublicKey(stored);
  if (stored.trim() === '') add('key', "can't be blank");
  if (!parsed || parsed.type === 'dsa') add('key', FORBIDDEN_TYPE_MESSAGE);
  if (stored.length > 5000) add('key', 'is too long (maximum is 5000 characters)');
  if (!SUPPORTED_ALGORITHMS.some((algorithm) => stored.startsWith(algorithm))) add('key', 'is invalid');

  if (!parsed) add('fingerprint_sha256', 'cannot be generated');
  else if (fingerprintTaken(normalizeKeyBlob(stored))) add('fingerprint_sha256', 'has already been taken');

  // `Key#expiration` runs `on: :create`, so an `expires_at` already in the past is refused.
  if (input.expiresAt && input.expiresAt.getTime() <= now.getTime()) add('key', 'has expired');
  return errors;
}
