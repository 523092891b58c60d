// Reading deploy/, docker-compose.yml, the Dockerfile and examples/ the way their tools would, for
// the tests that hold them to the code (none of those tools can run on this machine).
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { rsaKeyPair } from '../../sandbox/shared/rsa-keys.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const at = (...parts: string[]) => join(ROOT, ...parts);
export const readText = (path: string) => readFileSync(at(path), 'utf8');
/** Where the Deployments mount files of the operator's Secret (the GitHub App's private key). */
export const SECRET_FILES_DIR = '/etc/deploykey-secrets';

/**
 * deploy/config.yaml as a pod reads it: the files it names under the Secret's mount made in a
 * temporary directory (an App key of the shape GitHub hands out), so the service can load them.
 */
function deployConfigAsMounted(): string {
  const dir = mkdtempSync(join(tmpdir(), 'deploykey-deploy-config-'));
  // Readable by the image's user too, which some tests run the CLI as; the key is a throwaway.
  chmodSync(dir, 0o755);
  const { privateKey } = rsaKeyPair();
  writeFileSync(join(dir, 'github-app.pem'), privateKey.export({ type: 'pkcs1', format: 'pem' }), {
    mode: 0o644,
  });
  const text = readText('deploy/config.yaml').replaceAll(`${SECRET_FILES_DIR}/`, `${dir}/`);
  writeFileSync(join(dir, 'config.yaml'), text, { mode: 0o644 });
  return join(dir, 'config.yaml');
}
export const DEPLOY_CONFIG_FILE = deployConfigAsMounted();
/** The least environment loadConfig accepts. */
export const MINIMAL_ENV = {
  DATABASE_URL: 'postgres://x@db/x',
  VAULT_ADDR: 'http://vault:8200',
  VAULT_TOKEN: 't',
};

/** Every document of a YAML file, with merge keys (`<<:`) as Docker Compose reads them. */
export function readYaml(path: string): unknown[] {
  return parseAllDocuments(readText(path), { merge: true }).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return doc.toJS();
  });
}

/** The names in src/config.ts's EnvSchema: the only environment variables the service reads. */
export function settingsReadByConfig(): Set<string> {
  const source = readText('src/config.ts');
  const block = /const EnvSchema = Type\.Object\(\{([\s\S]*?)\n\}\);/.exec(source)?.[1] ?? '';
  const names = new Set([...block.matchAll(/^ {2}([A-Z][A-Z0-9_]*):/gm)].map((m) => m[1]!));
  if (!['DATABASE_URL', 'VAULT_TOKEN', 'HOST', 'PORT'].every((name) => names.has(name))) {
    throw new Error('src/config.ts no longer declares EnvSchema the way this reader expects');
  }
  return names;
}

/** The host credential variables a config file asks for, as loadConfig names them when missing. */
export function hostTokenNames(configPath = DEPLOY_CONFIG_FILE): string[] {
  try {
    loadConfig({ ...MINIMAL_ENV, DEPLOYKEY_CONFIG: configPath });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems.flatMap((p) => /^([A-Z_][A-Z0-9_]*) is required \(credentials/.exec(p)?.[1] ?? []);
  }
  return [];
}

export const hostTokenEnv = (): Record<string, string> =>
  Object.fromEntries(hostTokenNames().map((name) => [name, 'host-token']));

/** Environment variable names a manifest may set: the service's settings and its host tokens. */
export const allowedEnvironment = () => new Set([...settingsReadByConfig(), ...hostTokenNames()]);

/** The configuration deploy/config.yaml yields, with stand-in credentials. */
export const deployConfig = () =>
  loadConfig({ ...MINIMAL_ENV, ...hostTokenEnv(), DEPLOYKEY_CONFIG: DEPLOY_CONFIG_FILE });

export const DEFAULT_PORT = loadConfig(MINIMAL_ENV).http.port;
export const DEFAULT_AUDIENCE = loadConfig(MINIMAL_ENV).auth.audience;

/** A Kubernetes memory quantity in bytes. */
export function memoryBytes(quantity: string): number {
  const match = /^(\d+)(k|M|G|Ki|Mi|Gi)?$/.exec(quantity);
  if (!match) throw new Error(`not a memory quantity: ${quantity}`);
  const unit = match[2] ?? '';
  const scale = unit.endsWith('i') ? 1024 ** ' KMG'.indexOf(unit[0]!) : 1000 ** ' kMG'.indexOf(unit || ' ');
  return Number(match[1]) * scale;
}

export interface DockerStage {
  name: string;
  /** The base image, followed through earlier stages (`FROM deps AS build` → deps' image). */
  from: string;
  steps: { op: string; args: string }[];
}

/** Dockerfile instructions per stage, continuation lines joined, comments dropped, ARGs applied. */
export function dockerfileStages(): DockerStage[] {
  const lines = readText('Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((line) => line.trim() && !line.trim().startsWith('#'));
  const argDefaults = new Map<string, string>();
  const stages: DockerStage[] = [];
  for (const line of lines) {
    const [, op = '', args = ''] = /^\s*(\S+)\s*(.*)$/.exec(line) ?? [];
    const arg = /^(\w+)=(\S+)$/.exec(args);
    if (op === 'ARG' && stages.length === 0 && arg) argDefaults.set(arg[1]!, arg[2]!);
    if (op === 'FROM') {
      const expanded = args.replace(/\$\{(\w+)\}/g, (_, n: string) => argDefaults.get(n) ?? '');
      const [image = '', , name = ''] = expanded.split(/\s+/);
      stages.push({ name, from: stages.find((stage) => stage.name === image)?.from ?? image, steps: [] });
    } else stages.at(-1)?.steps.push({ op, args });
  }
  return stages;
}

/** Whether .dockerignore keeps a path (relative to the repository) out of the build context. */
export function ignoredByDockerignore(path: string): boolean {
  const patterns = readText('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  return patterns.some((pattern) => {
    const source = pattern
      .replace(/[.+^$()|[\]\\]/g, '\\$&')
      .replace(/\?/g, '[^/]')
      .replace(/\*\*\//g, '\0')
      .replace(/\*/g, '[^/]*')
      .replace(/\0/g, '(.*/)?');
    return new RegExp(`^${source}(/.*)?$`).test(path);
  });
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } };
}
export interface Probe {
  httpGet?: { path: string; port: string | number };
}
export interface Container {
  name: string;
  args?: string[];
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  securityContext?: Record<string, unknown>;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts?: { name: string; mountPath: string; subPath?: string }[];
}
export interface PodSpec {
  serviceAccountName?: string;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type: string } };
  initContainers?: Container[];
  containers: Container[];
  volumes?: {
    name: string;
    configMap?: { name: string };
    emptyDir?: object;
    secret?: { secretName: string; items?: { key: string; path: string }[] };
    projected?: { sources: { serviceAccountToken?: { audience?: string; path: string } }[] };
  }[];
}
export interface Manifest {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec: Record<string, unknown>;
}
export type Deployment = Manifest & {
  spec: { replicas: number; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } };
};

// What an operator puts into the Secret `deploykey-secrets`, in the shape each setting demands.
// PostgreSQL points at a closed port, so a command that gets that far fails on connecting.
const OPERATOR_SECRET_VALUES: Record<string, string> = {
  'database-url': 'postgresql://deploykey:secret@127.0.0.1:1/deploykey',
  'redis-url': 'redis://:secret@redis:6379',
  'vault-token': 'hvs.operator-token',
  'github-token': 'github_pat_operator',
  'gitlab-token': 'glpat-operator',
};

/** deploy/ as `kubectl apply -k deploy/` would see it. */
export function loadDeploy() {
  const kustomization = readYaml('deploy/kustomization.yaml')[0] as {
    namespace: string;
    resources: string[];
    configMapGenerator: { name: string; files: string[] }[];
  };
  const manifests = kustomization.resources.flatMap((file) => readYaml(`deploy/${file}`) as Manifest[]);
  const named = <T extends Manifest>(kind: string, name: string): T => {
    const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
    if (!found) throw new Error(`deploy/ has no ${kind}/${name}`);
    return found as T;
  };
  const api = named<Deployment>('Deployment', 'deploykey-api');
  const worker = named<Deployment>('Deployment', 'deploykey-worker');
  const podContainers = (d: Deployment) => [
    ...(d.spec.template.spec.initContainers ?? []),
    ...d.spec.template.spec.containers,
  ];
  const [generated] = kustomization.configMapGenerator;

  /**
   * A container's environment as the kubelet builds it, operator secrets filled in, optional ones
   * left out, and DEPLOYKEY_CONFIG pointed at deploy/config.yaml once it is known to name the
   * mounted ConfigMap's file.
   */
  const environmentOf = (container: Container, pod: PodSpec): Record<string, string> => {
    const env: Record<string, string> = {};
    for (const entry of container.env ?? []) {
      const ref = entry.valueFrom?.secretKeyRef;
      if (ref?.optional) continue;
      const value = ref ? OPERATOR_SECRET_VALUES[ref.key] : entry.value;
      if (value === undefined) throw new Error(`${container.name}: no value for ${entry.name}`);
      env[entry.name] = value;
    }
    const mount = container.volumeMounts?.find(
      (m) => pod.volumes?.find((v) => v.name === m.name)?.configMap?.name === generated?.name,
    );
    if (env.DEPLOYKEY_CONFIG !== `${mount?.mountPath}/${generated?.files[0]}`) {
      throw new Error(`${container.name}: DEPLOYKEY_CONFIG is not the mounted config file`);
    }
    return { ...env, DEPLOYKEY_CONFIG: DEPLOY_CONFIG_FILE };
  };

  return {
    kustomization,
    manifests,
    named,
    api,
    worker,
    deployments: [api, worker],
    podContainers,
    environmentOf,
  };
}
