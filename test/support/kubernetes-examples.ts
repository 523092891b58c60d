// The Kubernetes examples as the cluster would act on them: what the Vault Agent injector or the
// Vault CSI provider would log in with and write into the pod, and a Vault stand-in holding the
// service's own policy from deploy/vault/.
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { parseAllDocuments } from 'yaml';
import { rsaKeyPair } from '../../sandbox/shared/rsa-keys.ts';
import { startVaultStandIn } from '../../sandbox/vault/stand-in.ts';
import { parseDuration } from '../../src/cli/duration.ts';
import { readText, readYaml } from './packaging-files.ts';

export type Json = Record<string, unknown>;

/** The subset of Go's text/template the example's Vault Agent templates use, trim markers included. */
export async function renderAgentTemplate(
  template: string,
  read: (path: string) => Promise<Json>,
): Promise<string> {
  const parts = template.split(/(\{\{-? [^}]*? -?\}\})/);
  let out = '';
  const scopes: Json[] = [];
  for (let i = 0; i < parts.length; i++) {
    let part = parts[i]!;
    if (i % 2 === 0) {
      if (parts[i - 1]?.endsWith(' -}}')) part = part.trimStart();
      if (parts[i + 1]?.startsWith('{{- ')) part = part.trimEnd();
      out += part;
      continue;
    }
    const action = part.replace(/^\{\{-? | -?\}\}$/g, '');
    const withSecret = /^with secret "([^"]+)"$/.exec(action);
    const index = /^index \.Data\.data "([^"]+)"$/.exec(action);
    if (withSecret) scopes.push(await read(withSecret[1]!));
    else if (action === 'end') scopes.pop();
    else if (index) out += String(((scopes.at(-1)!.data as Json).data as Json)[index[1]!]);
    else throw new Error(`unsupported template action ${action}`);
  }
  return out;
}

export interface JobExample {
  job: {
    metadata: { name: string; namespace: string; annotations?: Record<string, string> };
    spec: Json & { activeDeadlineSeconds: number };
  };
  pod: { metadata?: { annotations?: Record<string, string> }; spec: Json & { serviceAccountName: string } };
  container: { args?: string[]; env?: { name: string; value?: string }[] };
  /** The commented instructions, and the `deploykey issue` and `complete` they run. */
  instructions: string;
  issue: { provider: string; repository: string; jobId: string; ttlSeconds: number; delivery: string };
  completedJob: string | undefined;
  audience: string | undefined;
  /** The `${NAME}`s the instructions fill in with envsubst: the key id (role name), the Vault path. */
  placeholders: string[];
  /** The audience of the service account token the pod logs in to Vault with. */
  vaultAudience: string | undefined;
  annotations: Record<string, string>;
  /** The CSI volume and the SecretProviderClass it names, when the example uses the CSI provider. */
  csi?: { volume: Json; providerClass: { metadata: { name: string }; spec: { provider: string } } };
  role: string;
  vaultPaths: string[];
  /**
   * The files the pod would see (path → content), read through Vault as the pod reads them, once
   * `envsubst` has filled in the placeholders.
   */
  render(
    read: (path: string) => Promise<Json>,
    envsubst: (text: string) => string,
  ): Promise<Record<string, string>>;
}

export function jobExample(file: string): JobExample {
  const docs = readYaml(file) as Json[];
  const job = docs.find((d) => d.kind === 'Job') as unknown as JobExample['job'];
  const pod = job.spec.template as JobExample['pod'];
  const container = (pod.spec.containers as JobExample['container'][])[0]!;
  const instructions = readText(file);
  const option = (command: string, name: string) =>
    new RegExp(`deploykey ${command} .*--${name} (\\S+)`).exec(instructions)?.[1];
  const common = {
    job,
    pod,
    container,
    instructions,
    issue: {
      provider: option('issue', 'provider'),
      repository: option('issue', 'repo'),
      jobId: option('issue', 'job'),
      ttlSeconds: parseDuration(option('issue', 'ttl') ?? '') ?? 0,
      delivery: option('issue', 'delivery'),
    } as JobExample['issue'],
    completedJob: option('complete', 'job'),
    audience: /--audience (\S+)/.exec(instructions)?.[1],
    placeholders: /envsubst '([^']+)'/.exec(instructions)?.[1]?.split(' ') ?? [],
    annotations: pod.metadata?.annotations ?? {},
  };
  const providerClass = docs.find((d) => d.kind === 'SecretProviderClass') as
    | {
        metadata: { name: string };
        spec: { provider: string; parameters: { roleName: string; objects: string; audience?: string } };
      }
    | undefined;
  if (providerClass) {
    const objects = parseAllDocuments(providerClass.spec.parameters.objects)[0]!.toJS() as Json[];
    const volume = (pod.spec.volumes as Json[]).find((v) => v.csi) as { name: string; csi: Json };
    const mount = (container as { volumeMounts: Json[] }).volumeMounts.find((m) => m.name === volume.name)!;
    return {
      ...common,
      csi: { volume: volume.csi, providerClass },
      vaultAudience: providerClass.spec.parameters.audience,
      role: providerClass.spec.parameters.roleName,
      vaultPaths: objects.map((o) => o.secretPath as string),
      async render(read, envsubst) {
        const entries = objects.map(async (o) => {
          const data = ((await read(envsubst(o.secretPath as string))).data as Json).data as Json;
          return [`${mount.mountPath}/${o.objectName}`, String(data[o.secretKey as string])];
        });
        return Object.fromEntries(await Promise.all(entries));
      },
    };
  }
  const { annotations } = common;
  const annotation = (name: string) => annotations[`vault.hashicorp.com/${name}`]!;
  const names = Object.keys(annotations).flatMap(
    (k) => /^vault\.hashicorp\.com\/agent-inject-secret-(.+)$/.exec(k)?.[1] ?? [],
  );
  const templatePaths = names.flatMap((n) =>
    [...annotation(`agent-inject-template-${n}`).matchAll(/secret "([^"]+)"/g)].map((m) => m[1]!),
  );
  // The injector's default secret-volume-path; the examples do not change it.
  const volumePath = annotations['vault.hashicorp.com/secret-volume-path'] ?? '/vault/secrets';
  // The agent logs in with the projected token of the volume the annotation names, when it names one.
  const tokenVolume = (
    pod.spec.volumes as { name: string; projected?: { sources: Json[] } }[] | undefined
  )?.find(
    (volume) => volume.name === annotations['vault.hashicorp.com/agent-service-account-token-volume-name'],
  );
  const projected = tokenVolume?.projected?.sources.find((source) => source.serviceAccountToken)
    ?.serviceAccountToken as { audience?: string } | undefined;
  return {
    ...common,
    vaultAudience: projected?.audience,
    role: annotation('role'),
    vaultPaths: [...names.map((n) => annotation(`agent-inject-secret-${n}`)), ...templatePaths],
    async render(read, envsubst) {
      const entries = names.map(async (name) => [
        `${volumePath}/${name}`,
        await renderAgentTemplate(envsubst(annotation(`agent-inject-template-${name}`)), read),
      ]);
      return Object.fromEntries(await Promise.all(entries));
    },
  };
}

export const SERVICE_POLICY_NAME = 'svc-deploykey-rotator';

/**
 * A Vault stand-in with Kubernetes auth for one made-up cluster, the service's policy from
 * deploy/vault/deploykey-rotator.hcl, and a token holding only that policy (and `default`).
 */
export async function startPolicyVault() {
  const rootToken = 'root-token';
  const clusterKey = rsaKeyPair();
  const publicKeysPem = [clusterKey.publicKey.export({ type: 'spki', format: 'pem' }).toString()];
  const server = await startVaultStandIn({ rootToken, kubernetes: { publicKeysPem } });

  const call = async (method: string, path: string, token: string, body?: Json) => {
    const response = await fetch(`${server.addr}/v1/${path}`, {
      method,
      headers: { 'x-vault-token': token, 'content-type': 'application/json' },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: response.status, body: (await response.json().catch(() => ({}))) as Json };
  };

  const policy = readText('deploy/vault/deploykey-rotator.hcl');
  const written = await call('PUT', `sys/policies/acl/${SERVICE_POLICY_NAME}`, rootToken, { policy });
  if (written.status !== 204) throw new Error(`Vault refused the policy: ${JSON.stringify(written.body)}`);
  const created = await call('POST', 'auth/token/create', rootToken, { policies: [SERVICE_POLICY_NAME] });
  const serviceToken = (created.body.auth as Json).client_token as string;

  /** Logs in as the Vault Agent and the CSI provider do: with a service account token for `audience`. */
  const podLogin = async (role: string, namespace: string, serviceAccount: string, audience: string) => {
    const jwt = await new SignJWT({
      'kubernetes.io': { namespace, serviceaccount: { name: serviceAccount, uid: randomUUID() } },
    })
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer('https://kubernetes.default.svc.cluster.local')
      .setSubject(`system:serviceaccount:${namespace}:${serviceAccount}`)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(clusterKey.privateKey);
    const { status, body } = await call('POST', 'auth/kubernetes/login', '', { role, jwt });
    return status === 200 ? ((body.auth as Json).client_token as string) : undefined;
  };

  return { addr: server.addr, serviceToken, call, podLogin, close: () => server.close() };
}
