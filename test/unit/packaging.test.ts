// deploy/ cannot be applied here (no Kubernetes), so it is held to the code instead: parsed as
// kustomize would, and checked against src/config.ts, the CLI and the routes it points at.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { CLI_PATH } from '../support/cli.ts';
import {
  allowedEnvironment,
  at,
  DEFAULT_PORT,
  type Deployment,
  deployConfig,
  dockerfileStages,
  loadDeploy,
  type Manifest,
  memoryBytes,
  readText,
  readYaml,
  SECRET_FILES_DIR,
} from '../support/packaging-files.ts';

const { kustomization, manifests, named, api, worker, deployments, podContainers, environmentOf } =
  loadDeploy();
const apiContainer = api.spec.template.spec.containers.find((c) => c.name === 'api')!;
const ALLOWED_ENV = allowedEnvironment();

describe('deploy/ (Kubernetes)', () => {
  it('grants the controller exactly the verbs it uses, and mounts its token only there', () => {
    const role = named<Manifest & { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] }>(
      'ClusterRole',
      'deploykey-controller',
    );
    expect(role.rules).toEqual([
      { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list', 'watch', 'patch'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get'] },
    ]);
    const controller = named<Deployment>('Deployment', 'deploykey-controller');
    const pod = controller.spec.template.spec as {
      serviceAccountName?: string;
      automountServiceAccountToken?: boolean;
    };
    expect(pod.serviceAccountName).toBe('deploykey-controller');
    expect(pod.automountServiceAccountToken).toBe(true);
    for (const other of [api, worker]) {
      expect(
        (other.spec.template.spec as { automountServiceAccountToken?: boolean }).automountServiceAccountToken,
      ).toBe(false);
    }
  });

  it('lists every manifest in the kustomization, commits no Secret, and mounts a config the service accepts', () => {
    const files = readdirSync(at('deploy')).filter((f) => f.endsWith('.yaml'));
    const generated = kustomization.configMapGenerator.flatMap((g) => g.files);
    expect(files.sort()).toEqual(['kustomization.yaml', ...generated, ...kustomization.resources].sort());
    expect(manifests.map((m) => m.kind)).not.toContain('Secret');
    const config = deployConfig();
    expect(config.hosts.map((h) => h.type).sort()).toEqual(['github', 'gitlab']);
    expect(config.auth.oidcIssuers.map((i) => i.issuer)).toEqual(
      expect.arrayContaining(['https://token.actions.githubusercontent.com', 'https://gitlab.com']),
    );
    expect(config.policy.length).toBeGreaterThan(0);
  });

  it('sets only environment variables that src/config.ts reads, secrets only by secretKeyRef', () => {
    const operatorSecretKeys = new Set<string>();
    for (const container of deployments.flatMap(podContainers)) {
      for (const entry of container.env ?? []) {
        expect(ALLOWED_ENV, `${container.name}: ${entry.name}`).toContain(entry.name);
        const ref = entry.valueFrom?.secretKeyRef;
        if (/URL$|TOKEN|KEY$/.test(entry.name) && entry.name !== 'VAULT_ADDR') {
          expect(ref?.name, `${entry.name} comes from the operator's Secret`).toBe('deploykey-secrets');
        }
        if (ref) operatorSecretKeys.add(ref.key);
      }
    }
    // The commented `kubectl create secret` names every key the Deployments read.
    const instructions = readText('deploy/kustomization.yaml');
    expect(instructions).toContain('kubectl -n deploykey create secret generic deploykey-secrets');
    for (const key of operatorSecretKeys)
      expect(instructions).toMatch(new RegExp(`--from-(literal|file)=${key}=`));
  });

  it('runs as a GitHub App and logs in to Vault as its service account: no GitHub or Vault token anywhere', () => {
    const config = deployConfig();
    const [written] = readYaml('deploy/config.yaml') as { hosts: { type: string; auth?: unknown }[] }[];
    const github = written!.hosts.find((host) => host.type === 'github')!;
    expect(github.auth).toMatchObject({ type: 'app', privateKeyFile: `${SECRET_FILES_DIR}/github-app.pem` });
    expect(config.vault.auth).toMatchObject({
      method: 'kubernetes',
      tokenFile: '/var/run/secrets/vault/token',
    });
    const instructions = readText('deploy/kustomization.yaml');
    expect(instructions).toContain('--from-file=github-app.pem=');
    expect(instructions).toMatch(/bound_service_account_names=deploykey-rotator,deploykey-controller /);
    const controller = named<Deployment>('Deployment', 'deploykey-controller');
    for (const deployment of [api, worker, controller]) {
      const pod = deployment.spec.template.spec;
      const volumeAt = (path: string, container: (typeof pod.containers)[number]) => {
        const mount = container.volumeMounts?.find((m) => m.mountPath === path);
        // A subPath mount would never see the Secret rotate.
        expect(mount?.subPath, `${container.name} mounts ${path} as a directory`).toBeUndefined();
        return pod.volumes?.find((v) => v.name === mount?.name);
      };
      for (const container of podContainers(deployment)) {
        const names = (container.env ?? []).map((entry) => entry.name);
        expect(names, container.name).not.toContain('VAULT_TOKEN');
        expect(names, container.name).not.toContain('DEPLOYKEY_HOST_GITHUB_TOKEN');
        expect(volumeAt(SECRET_FILES_DIR, container)?.secret).toEqual({
          secretName: 'deploykey-secrets',
          items: [{ key: 'github-app.pem', path: 'github-app.pem' }],
          defaultMode: expect.any(Number),
        });
        const login = volumeAt('/var/run/secrets/vault', container)?.projected?.sources[0];
        expect(login?.serviceAccountToken, container.name).toMatchObject({
          audience: 'vault',
          path: 'token',
        });
        expect(() => loadConfig(environmentOf(container, pod)), container.name).not.toThrow();
      }
    }
  });

  it("gives every container an environment the service's configuration accepts", () => {
    for (const deployment of deployments) {
      for (const container of podContainers(deployment)) {
        const env = environmentOf(container, deployment.spec.template.spec);
        expect(() => loadConfig(env), `${deployment.metadata.name}/${container.name}`).not.toThrow();
      }
    }
  });

  it('runs the API on the pod IP at the port the Service, the NetworkPolicy and the probes use', () => {
    const env = Object.fromEntries((apiContainer.env ?? []).map((e) => [e.name, e.value]));
    expect(env.HOST).toBe('0.0.0.0');
    const config = loadConfig(environmentOf(apiContainer, api.spec.template.spec));
    expect(config.http.port).toBe(DEFAULT_PORT);
    const portNamed = (port: string | number) =>
      typeof port === 'number' ? port : apiContainer.ports?.find((p) => p.name === port)?.containerPort;
    expect(apiContainer.ports?.map((p) => p.containerPort)).toEqual([DEFAULT_PORT]);

    const service = named<Manifest>('Service', 'deploykey-api').spec as {
      selector: Record<string, string>;
      ports: { port: number; targetPort: string | number }[];
    };
    expect(service.ports.map((p) => [p.port, portNamed(p.targetPort)])).toEqual([
      [DEFAULT_PORT, DEFAULT_PORT],
    ]);
    expect(api.spec.template.metadata.labels).toMatchObject(service.selector);
    expect(worker.spec.template.metadata.labels).not.toMatchObject(service.selector);

    const ingress = named<Manifest>('NetworkPolicy', 'deploykey-api-clients').spec as {
      ingress: { from: { namespaceSelector?: object }[]; ports: { port: number }[] }[];
    };
    expect(ingress.ingress.flatMap((rule) => rule.ports.map((p) => p.port))).toEqual([DEFAULT_PORT]);
    expect(ingress.ingress.every((rule) => rule.from.every((peer) => peer.namespaceSelector))).toBe(true);

    const routes = readText('src/http/routes/health.routes.ts');
    const probes = { liveness: apiContainer.livenessProbe, readiness: apiContainer.readinessProbe };
    expect(probes.liveness?.httpGet?.path).toBe('/healthz');
    expect(probes.readiness?.httpGet?.path).toBe('/readyz');
    for (const probe of Object.values(probes)) {
      expect(portNamed(probe!.httpGet!.port)).toBe(DEFAULT_PORT);
      expect(routes).toMatch(new RegExp(`app\\.get\\(\\s*'${probe!.httpGet!.path}'`));
    }
  });

  it('lets egress reach only DNS, PostgreSQL, Redis, Vault and HTTPS outside private ranges', () => {
    const policy = named<Manifest>('NetworkPolicy', 'deploykey-rotator').spec as {
      podSelector: { matchLabels: Record<string, string> };
      policyTypes: string[];
      ingress: unknown[];
      egress: { to: { ipBlock?: { cidr: string; except?: string[] } }[]; ports: { port: number }[] }[];
    };
    expect(policy.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(policy.ingress).toEqual([]);
    for (const d of deployments)
      expect(d.spec.template.metadata.labels).toMatchObject(policy.podSelector.matchLabels);
    const ports = new Set(policy.egress.flatMap((rule) => rule.ports.map((p) => p.port)));
    expect([...ports].sort((a, b) => a - b)).toEqual([53, 443, 5432, 6379, 8200]);
    for (const rule of policy.egress) {
      for (const peer of rule.to.filter((p) => p.ipBlock)) {
        expect(rule.ports.map((p) => p.port)).toEqual([443]);
        expect(peer.ipBlock!.except?.length).toBeGreaterThan(0);
      }
    }
  });

  it('runs as non-root with a read-only root, no capabilities, RuntimeDefault seccomp and bounded memory', () => {
    expect(named<Manifest>('ServiceAccount', 'deploykey-rotator')).toMatchObject({
      automountServiceAccountToken: false,
    });
    for (const deployment of deployments) {
      const pod = deployment.spec.template.spec;
      expect(pod.serviceAccountName).toBe('deploykey-rotator');
      expect(pod.securityContext).toMatchObject({
        runAsNonRoot: true,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(pod.securityContext?.runAsUser).toBeGreaterThan(0);
      for (const container of podContainers(deployment)) {
        expect(container.securityContext).toMatchObject({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        });
        expect(Object.keys(container.resources?.requests ?? {}).sort()).toEqual(['cpu', 'memory']);
        expect(Object.keys(container.resources?.limits ?? {}).sort()).toEqual(['cpu', 'memory']);
        const { requests, limits } = container.resources!;
        expect(memoryBytes(requests!.memory!)).toBeLessThanOrEqual(memoryBytes(limits!.memory!));
        // tsx writes its compile cache to the temp directory, which must therefore be writable.
        const tmp = container.volumeMounts?.find((m) => m.mountPath === '/tmp');
        expect(
          pod.volumes?.find((v) => v.name === tmp?.name)?.emptyDir,
          `${container.name} /tmp`,
        ).toBeDefined();
      }
    }
    expect(api.spec.replicas).toBe(2);
    expect(memoryBytes(apiContainer.resources!.limits!.memory!)).toBeLessThanOrEqual(256 * 1024 ** 2);
  });

  it('runs deploykey commands the CLI accepts: migrate first, then the API, worker and controller roles', async () => {
    const args = (d: Deployment, name: string) => podContainers(d).find((c) => c.name === name)?.args;
    expect(args(api, 'migrate')).toEqual(['migrate']);
    expect(args(worker, 'migrate')).toEqual(['migrate']);
    expect(args(api, 'api')?.slice(0, 3)).toEqual(['serve', '--role', 'api']);
    expect(args(worker, 'worker')?.slice(0, 3)).toEqual(['serve', '--role', 'worker']);
    const controller = named<Deployment>('Deployment', 'deploykey-controller');
    expect(args(controller, 'controller')?.slice(0, 3)).toEqual(['serve', '--role', 'controller']);
    // With every setting present and PostgreSQL unreachable, an accepted command gets as far as
    // connecting; a rejected one would stop at its arguments (exit 2) or at the configuration.
    const distinct = new Map<string, [string[], Record<string, string>]>();
    for (const d of deployments) {
      for (const c of podContainers(d)) {
        const run: [string[], Record<string, string>] = [
          c.args ?? [],
          environmentOf(c, d.spec.template.spec),
        ];
        distinct.set(JSON.stringify(run), run);
      }
    }
    const results = await Promise.all([...distinct.values()].map(([argv, env]) => runAsImageUser(argv, env)));
    for (const result of results) {
      expect(result.stderr).toContain('cannot reach PostgreSQL at DATABASE_URL');
      expect(result.code).toBe(1);
    }
  }, 60_000);
});

/**
 * Runs the real `deploykey` with exactly `env`, as the image's user when this test may switch to
 * it: a uid with no passwd entry, as Kubernetes' runAsUser gives, which a CLI must survive.
 */
function runAsImageUser(args: string[], env: Record<string, string>) {
  const [uid, gid = uid] = dockerfileStages()
    .at(-1)!
    .steps.findLast((s) => s.op === 'USER')!
    .args.split(':')
    .map(Number);
  const user = process.getuid?.() === 0 && uid ? { uid, gid: gid! } : {};
  return new Promise<{ code: number | null; stderr: string }>((done, fail) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: '/tmp', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
      ...user,
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 50_000);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stderr });
    });
  });
}
