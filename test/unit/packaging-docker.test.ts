// The Dockerfile and docker-compose.yml cannot be built or started here (no Docker), so they are
// held to the code instead: the image must hold what the sources read at run time, and compose
// must hand each container settings src/config.ts accepts.
import { existsSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import {
  allowedEnvironment,
  at,
  DEFAULT_PORT,
  DEPLOY_CONFIG_FILE,
  dockerfileStages,
  hostTokenEnv,
  ignoredByDockerignore,
  loadDeploy,
  readText,
  readYaml,
} from '../support/packaging-files.ts';

const ALLOWED_ENV = allowedEnvironment();
const sources = readdirSync(at('src'), { recursive: true, encoding: 'utf8' }).filter((f) =>
  f.endsWith('.ts'),
);

describe('Dockerfile', () => {
  const stages = dockerfileStages();
  const runtime = stages.at(-1)!;
  const steps = (op: string) => runtime.steps.filter((s) => s.op === op).map((s) => s.args);

  it('builds on the current Node LTS (node:24-bookworm-slim) in stages and compiles the sources before packaging them', () => {
    expect(stages.map((s) => s.from)).toEqual(stages.map(() => 'node:24-bookworm-slim'));
    const stage = (name: string) => stages.find((s) => s.name === name)?.steps.map((s) => s.args);
    expect(stage('deps')).toContain('npm ci --no-audit --no-fund');
    expect(stage('build')).toContain('npm run build');
    expect(JSON.parse(readText('package.json')).scripts.build).toMatch(/(^|&& )tsc -p tsconfig.build.json/);
    expect(steps('RUN').join('\n')).toContain('npm ci --omit=dev');
    // The service runs neither ssh nor git; only clients do.
    expect(steps('RUN').join('\n')).not.toMatch(/apt-get|openssh|\bgit\b/);
  });

  it('runs the compiled CLI as a non-root user on the port the service defaults to', () => {
    expect(steps('USER')).toHaveLength(1);
    expect(steps('USER')[0]).toMatch(/^(node|[1-9]\d*)(:[1-9]\d*)?$/);
    expect(steps('EXPOSE')).toEqual([String(DEFAULT_PORT)]);
    const entrypoint = JSON.parse(steps('ENTRYPOINT')[0]!) as string[];
    expect(entrypoint).toEqual(['node', 'dist/src/cli/main.js']);
    // The file the build stage's `tsc -p tsconfig.build.json` writes for src/cli/main.ts.
    const build = JSON.parse(readText('tsconfig.build.json')) as { compilerOptions: { outDir: string } };
    expect(entrypoint[1]).toBe(`${build.compilerOptions.outDir}/src/cli/main.js`);
    expect(existsSync(at('src/cli/main.ts'))).toBe(true);
    expect(steps('COPY')).toContain(
      `--from=build /app/${build.compilerOptions.outDir} ./${build.compilerOptions.outDir}`,
    );
    expect(JSON.parse(steps('CMD')[0]!)).toEqual(['serve']);
    const env = steps('ENV').flatMap((args) => [...args.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
    for (const [name] of env) expect(ALLOWED_ENV).toContain(name);
    expect(Object.fromEntries(env)).toMatchObject({ HOST: '0.0.0.0', PORT: String(DEFAULT_PORT) });
  });

  it('copies what the sources read next to themselves, from a build context that holds it', () => {
    for (const { args } of stages.flatMap((s) => s.steps.filter((i) => i.op === 'COPY'))) {
      if (args.startsWith('--from')) continue;
      for (const source of args.split(/\s+/).slice(0, -1)) {
        expect(existsSync(at(source)), source).toBe(true);
        expect(ignoredByDockerignore(source), `${source} is in the build context`).toBe(false);
      }
    }
    expect(ignoredByDockerignore('node_modules')).toBe(true);
    expect(ignoredByDockerignore('.env')).toBe(true);
    const shipped = steps('COPY').flatMap((args) => {
      const words = args.split(/\s+/).filter((w) => !w.startsWith('--'));
      const target = words
        .at(-1)!
        .replace(/^\.\/?/, '')
        .replace(/\/$/, '');
      return target ? [target] : words.slice(0, -1);
    });
    // Migrations, the audit console's files, package.json: whatever a source opens below the
    // project root, the image holds at the same place.
    let opened = 0;
    for (const file of sources) {
      for (const [, args] of readText(`src/${file}`).matchAll(/projectPath\(([^)]+)\)/g)) {
        const segments = [...args!.matchAll(/'([^']+)'/g)].map((m) => m[1]!);
        if (segments.length === 0) continue;
        opened += 1;
        const needed = segments.join('/');
        expect(existsSync(at(needed)), needed).toBe(true);
        expect(
          shipped.some((target) => needed === target || needed.startsWith(`${target}/`)),
          `src/${file} reads ${needed}`,
        ).toBe(true);
      }
    }
    expect(opened).toBeGreaterThanOrEqual(3);
  });

  it('leaves the sandbox out of the build and the image, and what only it and the tests use out of production', () => {
    const build = stages.find((s) => s.name === 'build')!;
    const copied = build.steps
      .filter((s) => s.op === 'COPY')
      .flatMap((s) => s.args.split(/\s+/).slice(0, -1));
    expect(copied).toContain('src');
    expect(copied.filter((source) => source.startsWith('sandbox'))).toEqual([]);
    expect(ignoredByDockerignore('sandbox')).toBe(true);
    const buildConfig = JSON.parse(readText('tsconfig.build.json')) as { include: string[] };
    expect(buildConfig.include).toEqual(['src']);

    // What `npm ci --omit=dev` installs: every package-lock entry not marked dev.
    const { dependencies } = JSON.parse(readText('package.json')) as { dependencies: Record<string, string> };
    const { packages } = JSON.parse(readText('package-lock.json')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const production = Object.entries(packages)
      .filter(([path, entry]) => path !== '' && !entry.dev)
      .map(([path]) => path.split('node_modules/').at(-1)!);
    expect(production).toEqual(expect.arrayContaining(['fastify', 'node-vault', '@octokit/rest']));
    for (const name of ['ssh2', 'sshpk', 'tsx']) {
      expect(Object.keys(dependencies), name).not.toContain(name);
      expect(production, `${name} in the production dependency tree`).not.toContain(name);
    }
  });

  it('installs every package the sources import, since the image leaves out devDependencies', () => {
    const { dependencies } = JSON.parse(readText('package.json')) as { dependencies: Record<string, string> };
    for (const file of sources) {
      for (const [, spec] of readText(`src/${file}`).matchAll(
        /^import (?!type )[^;]*?from '([^.'][^']*)'/gms,
      )) {
        if (spec!.startsWith('node:')) continue;
        const name = spec!.startsWith('@') ? spec!.split('/').slice(0, 2).join('/') : spec!.split('/')[0]!;
        expect(Object.keys(dependencies), `src/${file} imports ${spec}`).toContain(name);
      }
    }
  });
});

describe('docker-compose.yml', () => {
  interface ComposeService {
    image?: string;
    build?: { context: string; dockerfile: string };
    command?: string[];
    environment?: Record<string, string>;
    volumes?: string[];
    ports?: string[];
    healthcheck?: { test: string[] };
    depends_on?: Record<string, { condition: string }>;
  }
  const { services } = readYaml('docker-compose.yml')[0] as { services: Record<string, ComposeService> };
  // What compose substitutes for ${NAME:-default} when NAME is unset.
  const interpolated = (env: Record<string, string> = {}) =>
    Object.fromEntries(
      Object.entries(env).map(([k, v]) => [k, String(v).replace(/\$\{\w+:-([^}]*)\}/g, '$1')]),
    );
  const deploykey = Object.entries(services).filter(([, s]) => s.build);

  it('runs PostgreSQL 15, Redis 7 and Vault in dev mode next to migrate, API and worker containers', () => {
    expect(services.postgres?.image).toMatch(/^postgres:15/);
    expect(services.redis?.image).toMatch(/^redis:7/);
    expect(services.vault?.image).toMatch(/^hashicorp\/vault:/);
    expect(deploykey.map(([name]) => name).sort()).toEqual(['api', 'migrate', 'worker']);
    for (const [, service] of deploykey)
      expect(service.build).toEqual({ context: '.', dockerfile: 'Dockerfile' });
    for (const name of ['postgres', 'redis', 'vault', 'api']) {
      expect(services[name]?.healthcheck?.test[0], `${name} healthcheck`).toBe('CMD');
    }
    // The same commands the Kubernetes manifests run, which test/unit/packaging.test.ts runs.
    const { deployments, podContainers } = loadDeploy();
    const validated = deployments.flatMap(podContainers).map((c) => JSON.stringify(c.args));
    for (const [, service] of deploykey) expect(validated).toContain(JSON.stringify(service.command));
    expect(services.api?.depends_on?.migrate?.condition).toBe('service_completed_successfully');
    expect(services.worker?.depends_on?.migrate?.condition).toBe('service_completed_successfully');
  });

  it('wires each container to those services with settings the configuration accepts', () => {
    const pg = services.postgres!.environment!;
    for (const [name, service] of deploykey) {
      const env = interpolated(service.environment);
      for (const key of Object.keys(env)) expect(ALLOWED_ENV, `${name}: ${key}`).toContain(key);
      const mount = service.volumes?.find((v) => v.startsWith('./deploy/config.yaml:'));
      expect(mount?.split(':')[1], `${name} mounts deploy/config.yaml`).toBe(env.DEPLOYKEY_CONFIG);
      expect(env.DATABASE_URL).toBe(
        `postgres://${pg.POSTGRES_USER}:${pg.POSTGRES_PASSWORD}@postgres:5432/${pg.POSTGRES_DB}`,
      );
      expect(new URL(env.REDIS_URL!).hostname).toBe('redis');
      expect(new URL(env.VAULT_ADDR!).hostname).toBe('vault');
      expect(env.VAULT_TOKEN).toBe(services.vault!.environment!.VAULT_DEV_ROOT_TOKEN_ID);
      const config = loadConfig({ ...env, ...hostTokenEnv(), DEPLOYKEY_CONFIG: DEPLOY_CONFIG_FILE });
      expect(config.vault.kvMount).toBe('secret'); // the KV v2 mount Vault's dev mode creates
    }
    const apiEnv = interpolated(services.api!.environment);
    expect(apiEnv.HOST).toBe('0.0.0.0');
    expect(services.api!.ports).toEqual([`127.0.0.1:${apiEnv.PORT}:${DEFAULT_PORT}`]);
    expect(services.api!.healthcheck!.test.join(' ')).toContain(`127.0.0.1:${DEFAULT_PORT}/readyz`);
  });
});
