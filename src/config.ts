// The one place that reads process.env and the config file. Everything else receives `Config`.

import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Type, { type Static, type TSchema } from 'typebox';
import Value from 'typebox/value';
import { parse as parseYaml } from 'yaml';
import { parseSigningKey } from './audit/checkpoint-signing.ts';
import { createAccessPolicy, PolicySchema } from './auth/access-policy.ts';
import { OidcIssuerSchema } from './auth/oidc.ts';
import { HostSchema, Url } from './config-hosts.ts';
import { HttpLimitsSchema, RateLimitSchema } from './config-limits.ts';
import { ReconcilerSchema } from './config-reconciler.ts';
import { VaultSettingsSchema } from './config-vault.ts';
import { type ResolvedHostAuth, resolveHostCredentials } from './hosts/host-auth-config.ts';
import { KubernetesConfigSchema } from './kubernetes/kubernetes-config.ts';

export const EnvSchema = Type.Object({
  DATABASE_URL: Url(['postgres', 'postgresql'], 'PostgreSQL connection URL (source of truth)'),
  REDIS_URL: Url(['redis', 'rediss'], 'Redis URL for the revoke queue'),
  REDIS_PREFIX: Type.String({
    pattern: '^[A-Za-z0-9_-]{1,64}$',
    description: 'Key prefix for BullMQ in Redis',
  }),
  VAULT_ADDR: Url(['http', 'https'], 'Vault address'),
  VAULT_TOKEN: Type.Optional(
    Type.String({ minLength: 1, description: 'Vault token of the service (with vault.auth.method token)' }),
  ),
  HOST: Type.String({ minLength: 1, description: 'Address the API listens on' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, description: 'Port the API listens on' }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)),
    { description: 'pino log level' },
  ),
  DEPLOYKEY_CONFIG: Type.Optional(Type.String({ minLength: 1, description: 'Path of the YAML config file' })),
  // audit: checkpoint signing key (wiring for src/audit/checkpoint.ts)
  DEPLOYKEY_AUDIT_SIGNING_KEY: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'Ed25519 private key (PKCS#8 PEM or base64 DER) that signs audit checkpoints',
    }),
  ),
});

const ENV_DEFAULTS = {
  REDIS_URL: 'redis://127.0.0.1:6379',
  REDIS_PREFIX: 'dkr',
  HOST: '127.0.0.1',
  PORT: '8080',
  LOG_LEVEL: 'info',
};

export const FileSchema = Type.Object(
  {
    hosts: Type.Array(HostSchema, { default: [] }),
    keys: Type.Object(
      {
        minTtlSeconds: Type.Integer({ minimum: 1, default: 60 }),
        maxTtlSeconds: Type.Integer({ minimum: 1, default: 86_400 }),
        defaultTtlSeconds: Type.Integer({ minimum: 1, default: 3_600 }),
      },
      { additionalProperties: false, default: {} },
    ),
    vault: VaultSettingsSchema,
    auth: Type.Object(
      {
        audience: Type.String({
          minLength: 1,
          default: 'deploykey-rotator',
          description: 'Required `aud` of OIDC tokens',
        }),
        clockSkewSeconds: Type.Integer({ minimum: 0, maximum: 300, default: 30 }),
        oidcIssuers: Type.Array(OidcIssuerSchema, { default: [] }),
      },
      { additionalProperties: false, default: {} },
    ),
    policy: PolicySchema,
    rateLimit: RateLimitSchema,
    http: HttpLimitsSchema,
    worker: Type.Object(
      {
        concurrency: Type.Integer({ minimum: 1, maximum: 256, default: 16 }),
        // Another worker takes over a crashed worker's revoke within lockSeconds + 2 × stalledCheckSeconds.
        lockSeconds: Type.Integer({
          minimum: 1,
          default: 10,
          description: 'How long a worker holds a revoke job without renewing its claim',
        }),
        stalledCheckSeconds: Type.Integer({
          minimum: 1,
          default: 5,
          description: 'How often workers look for revoke jobs whose worker stopped renewing its claim',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    reconciler: ReconcilerSchema,
    kubernetes: KubernetesConfigSchema,
    // audit: checkpoint period (wiring for src/audit/checkpoint.ts)
    audit: Type.Object(
      {
        checkpointPeriodSeconds: Type.Integer({
          minimum: 1,
          default: 300,
          description: 'How often the worker signs the audit chain head and writes it to Vault',
        }),
        checkpointEveryEvents: Type.Integer({
          minimum: 0,
          default: 1_000,
          description: 'Also sign as soon as the chain has grown by this many events (0: by period only)',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

export type FileConfig = Static<typeof FileSchema>;
export type HostConfig = Static<typeof HostSchema> & ResolvedHostAuth;

export interface Config {
  databaseUrl: string;
  redisUrl: string;
  redisPrefix: string;
  vault: { addr: string; token?: string } & FileConfig['vault'];
  http: { host: string; port: number } & FileConfig['http'];
  logLevel: string;
  hosts: HostConfig[];
  keys: FileConfig['keys'];
  reconciler: FileConfig['reconciler'];
  kubernetes: FileConfig['kubernetes'];
  worker: FileConfig['worker'];
  auth: FileConfig['auth'];
  policy: FileConfig['policy'];
  rateLimit: FileConfig['rateLimit'];
  /** Without `signingKey` no checkpoints are written and verification says so. */
  audit: FileConfig['audit'] & { signingKey: KeyObject | undefined };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
  }
}

/** Turns schema errors into one line per offending setting, named as the operator wrote it. */
function describeErrors(schema: TSchema, value: unknown, name: (path: string) => string): string[] {
  const byPath = new Map<string, string>();
  for (const error of Value.Errors(schema, value)) {
    if (error.keyword === 'required') {
      const missing = (error.params as { requiredProperties: string[] }).requiredProperties;
      for (const property of missing) byPath.set(`${error.instancePath}/${property}`, 'is required');
      continue;
    }
    if (error.keyword === 'additionalProperties') {
      const extra = (error.params as { additionalProperties: string[] }).additionalProperties;
      for (const property of extra) byPath.set(`${error.instancePath}/${property}`, 'is not a known setting');
      continue;
    }
    if (error.keyword === 'boolean') continue;
    const existing = byPath.get(error.instancePath);
    const message =
      error.keyword === 'const' || error.keyword === 'anyOf' ? 'is not an allowed value' : error.message;
    if (!existing || error.keyword === 'anyOf') byPath.set(error.instancePath, message);
  }
  return [...byPath].map(([path, message]) => `${name(path)} ${message}`);
}

function readFileConfig(path: string | undefined): { file: unknown; problems: string[] } {
  if (!path) return { file: {}, problems: [] };
  try {
    return { file: parseYaml(readFileSync(path, 'utf8')) ?? {}, problems: [] };
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message.split('\n')[0];
    return { file: {}, problems: [`DEPLOYKEY_CONFIG (${path}) cannot be read: ${reason}`] };
  }
}

/** The named settings from the process environment, for tools that run the service with their own defaults. */
export function environmentOverrides(names: string[]): Record<string, string> {
  return Object.fromEntries(names.flatMap((name) => (process.env[name] ? [[name, process.env[name]]] : [])));
}

/**
 * Only the config file (`DEPLOYKEY_CONFIG`), validated: for tools such as `deploykey policy check`
 * that need the policy but none of the service's secrets or addresses.
 */
export function loadFileConfig(env: NodeJS.ProcessEnv = process.env): FileConfig {
  const { file: rawFile, problems } = readFileConfig(env.DEPLOYKEY_CONFIG || undefined);
  const fileValue = Value.Default(FileSchema, Value.Convert(FileSchema, structuredClone(rawFile)));
  problems.push(
    ...describeErrors(FileSchema, fileValue, (path) => `config ${path.slice(1).replaceAll('/', '.')}`),
  );
  if (problems.length > 0) throw new ConfigError(problems);
  return fileValue as FileConfig;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const rawEnv: Record<string, string | undefined> = {
    ...ENV_DEFAULTS,
    ...Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')),
  };
  const envValue = Value.Convert(EnvSchema, Value.Clean(EnvSchema, structuredClone(rawEnv))) as Record<
    string,
    unknown
  >;
  const problems = describeErrors(EnvSchema, envValue, (path) => path.slice(1));

  const { file: rawFile, problems: fileProblems } = readFileConfig(rawEnv.DEPLOYKEY_CONFIG);
  problems.push(...fileProblems);
  const fileValue = Value.Default(FileSchema, Value.Convert(FileSchema, structuredClone(rawFile)));
  problems.push(
    ...describeErrors(FileSchema, fileValue, (path) => `config ${path.slice(1).replaceAll('/', '.')}`),
  );
  const vaultAuth = (fileValue as { vault?: { auth?: { method?: unknown } } }).vault?.auth;
  if ((vaultAuth?.method ?? 'token') === 'token' && !envValue.VAULT_TOKEN) {
    problems.push('VAULT_TOKEN is required');
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const e = envValue as Static<typeof EnvSchema>;
  const file = fileValue as FileConfig;
  if (file.keys.minTtlSeconds > file.keys.maxTtlSeconds) {
    problems.push('config keys.minTtlSeconds must not exceed keys.maxTtlSeconds');
  }
  const defaultTtl = file.keys.defaultTtlSeconds;
  if (defaultTtl < file.keys.minTtlSeconds || defaultTtl > file.keys.maxTtlSeconds) {
    problems.push('config keys.defaultTtlSeconds must lie between keys.minTtlSeconds and keys.maxTtlSeconds');
  }
  if (file.http.headersTimeoutSeconds > file.http.requestTimeoutSeconds) {
    problems.push('config http.headersTimeoutSeconds must not exceed http.requestTimeoutSeconds');
  }
  const seen = new Set<string>();
  const hosts = file.hosts.map((host, index) => {
    if (seen.has(host.id)) problems.push(`config hosts.${index}.id "${host.id}" is used twice`);
    seen.add(host.id);
    if (host.type !== 'github' && !host.knownHosts) {
      problems.push(
        `config hosts.${index}.knownHosts is required for ${host.type === 'gitea' ? 'Gitea/Forgejo' : 'GitLab'} hosts (${host.type} publishes no host keys API)`,
      );
    }
    return { ...host, ...resolveHostCredentials(host, index, env, problems) };
  });
  const policy = createAccessPolicy(file.policy, {
    issuers: file.auth.oidcIssuers.map((issuer) => issuer.id),
    providers: file.hosts.map((host) => host.id),
  });
  problems.push(...policy.validate().map((problem) => `config policy: ${problem}`));
  let signingKey: KeyObject | undefined;
  if (e.DEPLOYKEY_AUDIT_SIGNING_KEY) {
    try {
      signingKey = parseSigningKey(e.DEPLOYKEY_AUDIT_SIGNING_KEY);
    } catch (error) {
      problems.push(`DEPLOYKEY_AUDIT_SIGNING_KEY ${(error as Error).message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    redisPrefix: e.REDIS_PREFIX,
    vault: { addr: e.VAULT_ADDR, ...(e.VAULT_TOKEN ? { token: e.VAULT_TOKEN } : {}), ...file.vault },
    http: { host: e.HOST, port: e.PORT, ...file.http },
    logLevel: e.LOG_LEVEL,
    hosts,
    keys: file.keys,
    reconciler: file.reconciler,
    kubernetes: file.kubernetes,
    worker: file.worker,
    auth: file.auth,
    policy: file.policy,
    rateLimit: file.rateLimit,
    audit: { ...file.audit, signingKey },
  };
}
