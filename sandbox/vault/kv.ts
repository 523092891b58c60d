// KV secrets engine version 2 (vault-plugin-secrets-kv) at one mount: versioned data, key
// metadata, soft delete, undelete, destroy and listing.

import {
  badRequest,
  goTimeNow,
  isObject,
  parseDurationSeconds,
  type VaultRequest,
  type VaultResult,
  type VaultRoute,
} from './http.ts';
import { mergePatch, validateCustomMetadata, versionList } from './kv-fields.ts';

const DEFAULT_MAX_VERSIONS = 10;

interface KvVersion {
  createdTime: string;
  deletionTime: string;
  destroyed: boolean;
  data?: Record<string, unknown>;
}

interface KvSecret {
  versions: Map<number, KvVersion>;
  currentVersion: number;
  oldestVersion: number;
  maxVersions: number;
  casRequired: boolean;
  deleteVersionAfter: number;
  customMetadata: Record<string, string> | null;
  createdTime: string;
  updatedTime: string;
}

const now = goTimeNow;
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const isGone = (version: KvVersion) => version.destroyed || version.deletionTime !== '';

export function createKvEngine(mount: string): VaultRoute[] {
  const secrets = new Map<string, KvSecret>();
  const exists = (match: RegExpExecArray) => secrets.has(match[1]!);

  const newSecret = (): KvSecret => ({
    versions: new Map(),
    currentVersion: 0,
    oldestVersion: 0,
    maxVersions: 0,
    casRequired: false,
    deleteVersionAfter: 0,
    customMetadata: null,
    createdTime: '',
    updatedTime: '',
  });

  const versionMetadata = (secret: KvSecret, number: number, version: KvVersion) => ({
    created_time: version.createdTime,
    custom_metadata: secret.customMetadata,
    deletion_time: version.deletionTime,
    destroyed: version.destroyed,
    version: number,
  });

  const checkCas = (request: VaultRequest, secret: KvSecret) => {
    const options = isObject(request.data.options) ? request.data.options : {};
    if ('cas' in options) {
      const cas = Number(options.cas);
      if (!Number.isInteger(cas)) throw badRequest('error parsing check-and-set parameter');
      if (cas !== secret.currentVersion)
        throw badRequest('check-and-set parameter did not match the current version');
    } else if (secret.casRequired) {
      throw badRequest('check-and-set parameter required for this call');
    }
  };

  const addVersion = (key: string, secret: KvSecret, data: Record<string, unknown>): VaultResult => {
    const createdTime = now();
    secret.currentVersion += 1;
    const version: KvVersion = {
      createdTime,
      deletionTime: '',
      destroyed: false,
      data: structuredClone(data),
    };
    secret.versions.set(secret.currentVersion, version);
    secret.updatedTime = createdTime;
    if (secret.createdTime === '') secret.createdTime = createdTime;
    // KeyMetadata.AddVersion: slide the window of kept versions.
    const maxVersions = secret.maxVersions || DEFAULT_MAX_VERSIONS;
    if (secret.currentVersion - secret.oldestVersion >= maxVersions) {
      const toDelete = secret.currentVersion - maxVersions;
      for (let number = secret.oldestVersion; number <= toDelete; number++) secret.versions.delete(number);
      secret.oldestVersion = toDelete + 1;
    }
    secrets.set(key, secret);
    return { data: versionMetadata(secret, secret.currentVersion, version) };
  };

  const writeData = (request: VaultRequest, match: RegExpExecArray) => {
    const key = match[1]!;
    if (!isObject(request.data.data)) throw badRequest('no data provided');
    const secret = secrets.get(key) ?? newSecret();
    checkCas(request, secret);
    return addVersion(key, secret, request.data.data);
  };

  const readData = (request: VaultRequest, match: RegExpExecArray): VaultResult | null => {
    const secret = secrets.get(match[1]!);
    if (!secret) return null;
    const asked = Number(request.data.version ?? 0);
    const number = Number.isInteger(asked) && asked > 0 ? asked : secret.currentVersion;
    const version = secret.versions.get(number);
    if (!version) return null;
    const metadata = versionMetadata(secret, number, version);
    // A deleted or destroyed version answers 404 with its metadata still in the body.
    if (isGone(version)) return { status: 404, data: { data: null, metadata } };
    return { data: { data: structuredClone(version.data), metadata } };
  };

  const patchData = (request: VaultRequest, match: RegExpExecArray) => {
    const key = match[1]!;
    if (!isObject(request.data.data)) throw badRequest('no data provided');
    const secret = secrets.get(key);
    const current = secret?.versions.get(secret.currentVersion);
    if (!secret || !current) return null;
    checkCas(request, secret);
    if (isGone(current)) {
      return { status: 404, data: versionMetadata(secret, secret.currentVersion, current) };
    }
    return addVersion(key, secret, mergePatch(current.data ?? {}, request.data.data));
  };

  const deleteLatest = (_request: VaultRequest, match: RegExpExecArray) => {
    const secret = secrets.get(match[1]!);
    const latest = secret?.versions.get(secret.currentVersion);
    if (latest && !isGone(latest)) latest.deletionTime = now();
    return null;
  };

  const eachVersion = (
    request: VaultRequest,
    match: RegExpExecArray,
    apply: (version: KvVersion) => void,
  ) => {
    const numbers = versionList(request.data.versions);
    if (numbers.length === 0) throw badRequest('no version number provided');
    const secret = secrets.get(match[1]!);
    for (const number of numbers) {
      const version = secret?.versions.get(number);
      if (version && !version.destroyed) apply(version);
    }
    return null;
  };

  const writeMetadata = (request: VaultRequest, match: RegExpExecArray) => {
    const key = match[1]!;
    if (key === '') throw badRequest('missing path');
    const body = request.data;
    const fields = ['max_versions', 'cas_required', 'delete_version_after', 'custom_metadata'];
    if (!fields.some((field) => field in body)) return null;
    const customMetadata =
      'custom_metadata' in body ? validateCustomMetadata(body.custom_metadata) : undefined;
    const secret = secrets.get(key) ?? { ...newSecret(), createdTime: now(), updatedTime: now() };
    if ('max_versions' in body) secret.maxVersions = Number(body.max_versions) || 0;
    if ('cas_required' in body)
      secret.casRequired = body.cas_required === true || body.cas_required === 'true';
    if ('delete_version_after' in body) {
      secret.deleteVersionAfter = parseDurationSeconds(body.delete_version_after, 'delete_version_after');
    }
    if (customMetadata) secret.customMetadata = customMetadata;
    secrets.set(key, secret);
    return null;
  };

  const readMetadata = (_request: VaultRequest, match: RegExpExecArray) => {
    const secret = secrets.get(match[1]!);
    if (!secret) return null;
    const versions = Object.fromEntries(
      [...secret.versions].map(([number, version]) => [
        String(number),
        {
          created_time: version.createdTime,
          deletion_time: version.deletionTime,
          destroyed: version.destroyed,
        },
      ]),
    );
    return {
      data: {
        cas_required: secret.casRequired,
        created_time: secret.createdTime,
        current_version: secret.currentVersion,
        custom_metadata: secret.customMetadata,
        delete_version_after: `${secret.deleteVersionAfter}s`,
        max_versions: secret.maxVersions,
        oldest_version: secret.oldestVersion,
        updated_time: secret.updatedTime,
        versions,
      },
    };
  };

  // Storage listing: direct children of the prefix, deeper keys collapsed into `folder/`.
  const list = (_request: VaultRequest, match: RegExpExecArray) => {
    const prefix = match[1]!;
    const keys = new Set<string>();
    for (const key of secrets.keys()) {
      if (!key.startsWith(prefix) || key === prefix) continue;
      const rest = key.slice(prefix.length);
      const slash = rest.indexOf('/');
      keys.add(slash === -1 ? rest : rest.slice(0, slash + 1));
    }
    return { data: { keys: [...keys].sort() } };
  };

  const base = escapeRegExp(mount);
  return [
    {
      pattern: new RegExp(`^${base}/config$`),
      operations: {
        read: () => ({ data: { cas_required: false, delete_version_after: '0s', max_versions: 0 } }),
      },
    },
    {
      pattern: new RegExp(`^${base}/data/(.*[^/])$`),
      exists,
      operations: {
        read: readData,
        create: writeData,
        update: writeData,
        patch: patchData,
        delete: deleteLatest,
      },
    },
    {
      pattern: new RegExp(`^${base}/metadata/(.*)$`),
      exists,
      operations: {
        read: readMetadata,
        create: writeMetadata,
        update: writeMetadata,
        list,
        delete: (_request, match) => {
          secrets.delete(match[1]!);
          return null;
        },
      },
    },
    {
      pattern: new RegExp(`^${base}/delete/(.*)$`),
      operations: {
        update: (request, match) =>
          eachVersion(request, match, (version) => {
            if (version.deletionTime === '') version.deletionTime = now();
          }),
      },
    },
    {
      pattern: new RegExp(`^${base}/undelete/(.*)$`),
      operations: {
        update: (request, match) =>
          eachVersion(request, match, (version) => {
            version.deletionTime = '';
          }),
      },
    },
    {
      pattern: new RegExp(`^${base}/destroy/(.*)$`),
      operations: {
        update: (request, match) =>
          eachVersion(request, match, (version) => {
            version.destroyed = true;
            delete version.data;
          }),
      },
    },
  ];
}
