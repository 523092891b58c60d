// The service's Vault session under a short-lived token: a 5 s TTL within a 30 s max TTL, for
// 2 minutes (--quick: 20 s), while key writes (the Vault half of an issue) and destroys (of a
// revoke) run back to back. Prints JSON: requests, failures, logins, renewals, latency.
// Usage: node --import tsx bench/vault-renewal.bench.ts [--quick] [--seconds N]
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import vault from 'node-vault';
import { startVaultStandIn } from '../sandbox/vault/stand-in.ts';
import { generateDeployKeyPair } from '../src/keys/ssh-keypair.ts';
import { createLogger } from '../src/log.ts';
import { systemClock, systemTimers } from '../src/time.ts';
import { createVaultSession } from '../src/vault/vault-login.ts';
import { createVaultSecretStore } from '../src/vault/vault-secret-store.ts';

const { values } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, seconds: { type: 'string' } },
  strict: true,
});
const seconds = Number(values.seconds ?? (values.quick ? 20 : 120));
const ROOT = 'root-vault-renewal-bench';

const standIn = await startVaultStandIn({ rootToken: ROOT });
const root = vault({ endpoint: standIn.addr, token: ROOT });
await root.addPolicy({
  name: 'svc',
  rules: `path "secret/data/deploy-keys/*" { capabilities = ["create", "update", "read"] }
path "secret/metadata/deploy-keys/*" { capabilities = ["create", "update", "read", "delete"] }
path "auth/token/renew-self" { capabilities = ["update"] }
path "auth/token/lookup-self" { capabilities = ["read"] }`,
});
await root.write('auth/approle/role/rotator', {
  token_ttl: '5s',
  token_max_ttl: '30s',
  token_policies: ['svc'],
});
const roleId = (await root.getApproleRoleId({ role_name: 'rotator' })).data.role_id;
const secretIdFile = join(mkdtempSync(join(tmpdir(), 'vault-renewal-bench-')), 'secret-id');
writeFileSync(secretIdFile, (await root.write('auth/approle/role/rotator/secret-id', {})).data.secret_id);

const messages: string[] = [];
const sink = new Writable({
  write(chunk, _encoding, done) {
    messages.push(
      ...String(chunk)
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line).msg as string),
    );
    done();
  },
});
const session = createVaultSession({
  addr: standIn.addr,
  auth: { method: 'approle', roleId, secretIdFile },
  clock: systemClock,
  timers: systemTimers,
  logger: createLogger('info', sink),
});
await session.start();
const store = createVaultSecretStore({ vault: session.client, kvMount: 'secret', pathPrefix: 'deploy-keys' });

const latencies: number[] = [];
let failures = 0;
let issues = 0;
let revokes = 0;
const until = Date.now() + seconds * 1000;
for (let n = 0; Date.now() < until; n += 1) {
  const path = store.pathFor('o-bench', `job-${n}`, 'github', 'acme/models');
  const keyId = `key-${n}`;
  const started = performance.now();
  try {
    await store.write(
      path,
      { ...generateDeployKeyPair('bench'), knownHosts: 'h' },
      {
        keyId,
        expiresAt: new Date(Date.now() + 60_000),
      },
    );
    issues += 1;
    // Revoke it: a key left behind would be overdue.
    if ((await store.destroy(path, keyId)) !== 'destroyed') throw new Error('not destroyed');
    revokes += 1;
  } catch {
    failures += 1;
  }
  latencies.push(performance.now() - started);
  await new Promise((resolve) => setTimeout(resolve, 20));
}
session.stop();
await standIn.close();

latencies.sort((a, b) => a - b);
const at = (q: number) =>
  Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]! * 10) / 10;
const count = (message: string) => messages.filter((text) => text === message).length;
process.stdout.write(
  `${JSON.stringify({
    benchmark: 'vault-renewal',
    seconds,
    tokenTtlSeconds: 5,
    tokenMaxTtlSeconds: 30,
    issues,
    revokes,
    failures,
    overdueKeys: issues - revokes,
    logins: count('logged in to Vault'),
    renewalFailures:
      count('Vault token renewal failed; retrying') + count('Vault refused renewal; logging in again'),
    tokenRejected: count('Vault no longer accepts the service token; logging in again'),
    latencyMs: { p50: at(0.5), p99: at(0.99), max: at(1) },
  })}\n`,
);
