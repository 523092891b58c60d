// A service harness for the "who may ask" suite: the sandbox access policy plus rules the attacks
// need, and a record of every secret handed out and every error body seen, so each file can prove
// that none of those secrets ever came back in an error or a log line.
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { expect } from 'vitest';
import type { MintOptions, OidcPlatform } from '../../sandbox/oidc/stand-in.ts';
import { SANDBOX_OIDC_ISSUER_ID, SANDBOX_POLICY } from '../../sandbox/stand-ins.ts';
import type { AuditEventRow } from '../../src/db/schema.ts';
import { type Harness, type HarnessOptions, startHarness } from '../support/service-harness.ts';

export const OIDC_ISSUER = SANDBOX_OIDC_ISSUER_ID;

/** The sandbox policy, a one-key quota for the `quota/trainer` service account, and the test callers. */
export const SECURITY_POLICY = [
  {
    name: 'kubernetes-quota',
    match: {
      issuer: SANDBOX_OIDC_ISSUER_ID,
      claims: { 'kubernetes.io.namespace': 'quota', 'kubernetes.io.serviceaccount.name': 'trainer' },
    },
    allow: { providers: ['github'], repositories: ['acme/*'], maxActiveKeys: 1 },
  },
  ...SANDBOX_POLICY,
  {
    name: 'test-callers',
    match: { issuer: 'api-token', token: '*ci' },
    allow: { providers: ['*'], repositories: ['**'], deliveries: ['vault', 'response', 'wrapped'] },
  },
];

// No background scan lists host keys while a test counts requests at the GitHub stand-in.
const QUIET_RECONCILER = { periodSeconds: 1, pendingTimeoutSeconds: 5, orphanScanSeconds: 3_600 };

export type Answer = Awaited<ReturnType<Harness['api']>>;
type CallOptions = Parameters<Harness['api']>[2];

export interface SecurityHarness {
  harness: Harness;
  /** `harness.api`, remembering error bodies and any private key or wrap token handed out. */
  call(method: string, path: string, options?: CallOptions): Promise<Answer>;
  /** Sends the path byte for byte (fetch would resolve "." and ".." segments first), as the `ci` caller. */
  raw(method: string, path: string): Promise<Answer>;
  /** Mints an ID token at the OIDC stand-in and remembers it as a secret. */
  mint(kind: OidcPlatform, claims?: Record<string, unknown>, options?: MintOptions): Promise<string>;
  remember(...secrets: string[]): void;
  /** Requests the GitHub stand-in has answered so far. */
  githubRequests(): number;
  auditEvents(action: string): Promise<AuditEventRow[]>;
  /** Fails when any remembered secret appears in an error body or the captured log. */
  expectNoLeaks(): Promise<void>;
  close(): Promise<void>;
}

export async function startSecurityHarness(options: HarnessOptions = {}): Promise<SecurityHarness> {
  const harness = await startHarness({
    ...options,
    fileConfig: { policy: SECURITY_POLICY, reconciler: QUIET_RECONCILER, ...options.fileConfig },
  });
  const secrets = new Set<string>();
  const errorBodies: string[] = [];
  const remember = (...values: string[]) => {
    for (const value of values) if (value) secrets.add(value);
  };
  const { standIns } = harness;
  remember(
    ...Object.values(harness.tokens),
    standIns.vault.token,
    standIns.github.token,
    standIns.gitlab.token,
  );
  remember(String(standIns.oidc.privateJwk().d));

  const rememberIssued = async (body: Record<string, unknown>) => {
    if (typeof body.privateKey === 'string') remember(body.privateKey);
    if (typeof body.wrapToken === 'string') remember(body.wrapToken);
    const vault = body.vault as { path?: string } | null | undefined;
    if (vault?.path) {
      const stored = await harness.service.container.secrets.read(vault.path).catch(() => undefined);
      if (stored) remember(stored.privateKey);
    }
  };

  return {
    harness,
    async call(method, path, callOptions) {
      const answer = await harness.api(method, path, callOptions);
      if (answer.status >= 400) errorBodies.push(answer.text);
      if (answer.status < 300 && typeof answer.body === 'object' && answer.body !== null) {
        if (typeof answer.body.token === 'string') remember(answer.body.token);
        if (method === 'POST' && path === '/v1/keys') await rememberIssued(answer.body);
      }
      return answer;
    },
    async raw(method, path) {
      const answer = await rawRequest(harness.service.url, method, path, harness.token);
      if (answer.status >= 400) errorBodies.push(answer.text);
      return answer;
    },
    async mint(kind, claims, mintOptions) {
      const token = await standIns.oidc.mint(kind, claims, mintOptions);
      remember(token);
      return token;
    },
    remember,
    githubRequests: () => standIns.github.api.faults.stats().total,
    auditEvents: (action) =>
      harness.database.db
        .selectFrom('audit_events')
        .selectAll()
        .where('action', '=', action)
        .orderBy('seq')
        .execute(),
    async expectNoLeaks() {
      expect(secrets.size, 'secrets were handed out during the suite').toBeGreaterThan(4);
      expect(errorBodies.length, 'error bodies were collected during the suite').toBeGreaterThan(0);
      const places = [
        ...errorBodies.map((text, i) => ({ where: `error body #${i}`, text })),
        { where: 'the service log', text: harness.logs.text() },
      ];
      for (const secret of secrets) {
        const needles = fragmentsOf(secret);
        for (const { where, text } of places) {
          const found = needles.find((needle) => text.includes(needle));
          expect(found, `${where} contains a secret (${secret.slice(0, 12)}…)`).toBeUndefined();
        }
      }
    },
    close: () => harness.close(),
  };
}

function rawRequest(base: string, method: string, path: string, token: string): Promise<Answer> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      { host: hostname, port, method, path, headers: { authorization: `Bearer ${token}` } },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          text += chunk;
        });
        response.on('end', () => {
          const headers = new Headers();
          for (const [name, value] of Object.entries(response.headers)) {
            if (typeof value === 'string') headers.set(name, value);
          }
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {}
          resolve({ status: response.statusCode ?? 0, headers, body, text });
        });
      },
    );
    outgoing.on('error', reject);
    outgoing.end();
  });
}

/**
 * What would betray a secret in a log or body: the value itself (also JSON-escaped), the signature
 * of a JWT, the random part of an API token, each base64 line of a private key, an API token's hash.
 */
function fragmentsOf(secret: string): string[] {
  const fragments = [secret, JSON.stringify(secret).slice(1, -1)];
  const jwtSignature = /^[\w-]+\.[\w-]+\.([\w-]{20,})$/.exec(secret)?.[1];
  if (jwtSignature) fragments.push(jwtSignature);
  if (secret.startsWith('dkr_')) {
    fragments.push(secret.slice(4), createHash('sha256').update(secret).digest('hex'));
  }
  if (secret.includes('PRIVATE KEY')) {
    fragments.push(...secret.split('\n').filter((line) => /^[A-Za-z0-9+/=]{40,}$/.test(line)));
  }
  return fragments;
}

/** Asserts an RFC 9457 problem answer with this status (and code, when given). */
export function expectProblem(answer: Answer, status: number, code?: string): void {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(answer.body).toMatchObject({ status, ...(code ? { code } : {}) });
  // A 5xx shows no internals, so only refusals carry a detail.
  if (status < 500) expect(typeof answer.body.detail).toBe('string');
}
