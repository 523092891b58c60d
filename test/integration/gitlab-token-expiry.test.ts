// The service's own GitLab tokens: their `expires_at` (GET /personal_access_tokens/self) read at
// start and every hour of the injected clock, a gauge of the seconds left, a warning in the log
// within the configured days, and a token GitLab refuses (expired or revoked) shown as not ready.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GitlabStandIn, startGitlabStandIn } from '../../sandbox/gitlab/stand-in.ts';
import { createHostState } from '../../sandbox/shared/host-state.ts';
import { startVaultStandIn, type VaultStandIn } from '../../sandbox/vault/stand-in.ts';
import { type HostConfig, loadConfig } from '../../src/config.ts';
import { type Container, createContainer } from '../../src/container.ts';
import {
  type CredentialExpiryWatch,
  createCredentialExpiryWatch,
  EXPIRY_CHECK_PERIOD_MS,
  EXPIRY_RETRY_MS,
} from '../../src/hosts/credential-expiry.ts';
import { createHost } from '../../src/hosts/host-registry.ts';
import { type App, buildApp } from '../../src/http/app.ts';
import { createMetrics, type Metrics } from '../../src/metrics.ts';
import type { Timers } from '../../src/time.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { testHostDeps } from '../support/host-adapters.ts';
import { createCapturedLogger } from '../support/log-capture.ts';
import { TEST_REDIS_URL } from '../support/redis.ts';
import { eventually } from '../support/service-harness.ts';

const DAY_MS = 86_400_000;
const SOON = 'glpat-expiresInThreeDays0001';
const LATER = 'glpat-expiresInSixtyDays00002';
const CUSTOM = 'glpat-twentyDaysWarnedAt30d03';
const EXPIRED = 'glpat-alreadyExpiredToken004';
const KNOWN_HOSTS = ['[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfTheGitlabStandIn'];

let gitlab: GitlabStandIn;
const day = (offsetDays: number) => new Date(Date.now() + offsetDays * DAY_MS).toISOString().slice(0, 10);

beforeAll(async () => {
  const state = createHostState('gitlab');
  state.addRepository('acme/models', '/nonexistent/acme/models.git');
  gitlab = await startGitlabStandIn({ state, tokens: [SOON, LATER, CUSTOM, EXPIRED] });
  gitlab.tokens.setExpiry(SOON, day(3));
  gitlab.tokens.setExpiry(LATER, day(60));
  gitlab.tokens.setExpiry(CUSTOM, day(20));
  // Expired since the start of today (UTC).
  gitlab.tokens.setExpiry(EXPIRED, day(0));
});
afterAll(() => gitlab?.close());

/** Timers that fire only when the test moves the clock past them. */
function manualTime(startMs: number) {
  let nowMs = startMs;
  const due: { at: number; run: () => void }[] = [];
  const timers: Timers = {
    sleep: () => Promise.resolve(),
    after(ms, run) {
      const entry = { at: nowMs + ms, run };
      due.push(entry);
      return () => due.splice(due.indexOf(entry) >>> 0, 1);
    },
  };
  return {
    clock: () => new Date(nowMs),
    timers,
    pending: () => due.map((entry) => entry.at - nowMs),
    advance(ms: number) {
      nowMs += ms;
      for (const entry of due.filter((item) => item.at <= nowMs)) {
        due.splice(due.indexOf(entry), 1);
        entry.run();
      }
    },
  };
}

function gitlabHost(id: string, token: string, expiryWarningDays?: number): HostConfig {
  return {
    id,
    type: 'gitlab',
    apiUrl: gitlab.url,
    sshUrl: 'ssh://git@127.0.0.1:2222',
    knownHosts: KNOWN_HOSTS,
    token,
    credential: { type: 'token', token: { value: token } },
    ...(expiryWarningDays ? { auth: { type: 'token', expiryWarningDays } } : {}),
  };
}

async function gauge(metrics: Metrics, name: string, host: string): Promise<number | undefined> {
  const metric = metrics.registry.getSingleMetric(name);
  const { values } = (await metric?.get()) ?? { values: [] };
  return values.find((value) => value.labels.host === host)?.value;
}

describe('the expiry watch of the service’s GitLab tokens', () => {
  let watch: CredentialExpiryWatch;
  afterAll(() => watch?.stop());

  it('warns within 14 days (or the configured days) and sets the seconds left, at start and hourly', async () => {
    const time = manualTime(Date.now());
    const captured = createCapturedLogger('debug');
    const metrics = createMetrics();
    const hostConfigs = [
      gitlabHost('gl-soon', SOON),
      gitlabHost('gl-later', LATER),
      gitlabHost('gl-custom', CUSTOM, 30),
    ];
    const deps = testHostDeps({ metrics, logger: captured.logger });
    const hosts = new Map(hostConfigs.map((config) => [config.id, createHost(config, deps)]));
    watch = createCredentialExpiryWatch({
      hostConfigs,
      hosts,
      metrics,
      logger: captured.logger,
      clock: time.clock,
      timers: time.timers,
    });
    const seconds = (host: string) => gauge(metrics, 'deploykey_host_credential_expiry_seconds', host);
    const expiring = (host: string) => gauge(metrics, 'deploykey_host_credential_expiring', host);
    const warnings = (host: string) =>
      captured.lines.filter((line) => line.includes('"level":40') && line.includes(`"host":"${host}"`));

    await watch.start();
    await eventually(async () => (await Promise.all(hostConfigs.map((c) => seconds(c.id)))).every(Boolean), {
      what: 'the first check of every host',
    });
    // The token stops working at midnight UTC of its expiry date: 2 to 3 days from now.
    expect(await seconds('gl-soon')).toBeGreaterThan(2 * 86_400);
    expect(await seconds('gl-soon')).toBeLessThanOrEqual(3 * 86_400);
    expect(await seconds('gl-later')).toBeGreaterThan(59 * 86_400);
    expect([await expiring('gl-soon'), await expiring('gl-later'), await expiring('gl-custom')]).toEqual([
      1, 0, 1,
    ]);
    expect(warnings('gl-soon')).toHaveLength(1);
    expect(JSON.parse(warnings('gl-soon')[0]!)).toMatchObject({
      expiresAt: `${day(3)}T00:00:00.000Z`,
      daysLeft: 2,
      msg: expect.stringContaining('gitlab token on host gl-soon expires in 2 days'),
    });
    expect(warnings('gl-custom')).toHaveLength(1);
    expect(warnings('gl-later')).toEqual([]);
    expect(time.pending()).toEqual([EXPIRY_CHECK_PERIOD_MS, EXPIRY_CHECK_PERIOD_MS, EXPIRY_CHECK_PERIOD_MS]);
    for (const check of Object.values(watch.readiness)) await expect(check()).resolves.toBeUndefined();

    // 47 days later by the service's clock, the hourly check finds the 60-day token within 14 days.
    time.advance(47 * DAY_MS);
    await eventually(async () => warnings('gl-later').length === 1, { what: 'the warning for gl-later' });
    expect(await expiring('gl-later')).toBe(1);
    expect(await seconds('gl-later')).toBeLessThanOrEqual(13 * 86_400);

    expect(captured.text()).toContain('gl-soon');
    for (const token of [SOON, LATER, CUSTOM]) expect(captured.text()).not.toContain(token);
  });

  it('marks a host whose token GitLab refuses as not ready, says why, and looks again within a minute', async () => {
    gitlab.tokens.revoke(SOON);
    await watch.checkAll();
    expect(Object.keys(watch.readiness).sort()).toEqual([
      'host-token:gl-custom',
      'host-token:gl-later',
      'host-token:gl-soon',
    ]);
    await expect(watch.readiness['host-token:gl-soon']!()).rejects.toThrow(
      /401 invalid_token: Token was revoked/,
    );
    await expect(watch.readiness['host-token:gl-later']!()).resolves.toBeUndefined();
    expect(EXPIRY_RETRY_MS).toBeLessThanOrEqual(60_000);
  });
});

describe('GET /readyz and /metrics with an expired GitLab token', () => {
  let database: TestDatabase;
  let vault: VaultStandIn;
  let container: Container;
  let app: App;
  const captured = createCapturedLogger('debug');

  beforeAll(async () => {
    database = await createTestDatabase();
    vault = await startVaultStandIn({ rootToken: 'root-for-token-expiry' });
    const dir = mkdtempSync(join(tmpdir(), 'gitlab-token-expiry-'));
    const host = (id: string) =>
      `  - { id: ${id}, type: gitlab, apiUrl: "${gitlab.url}", sshUrl: "ssh://git@127.0.0.1:2222", knownHosts: ["${KNOWN_HOSTS[0]}"] }\n`;
    writeFileSync(join(dir, 'config.yaml'), `hosts:\n${host('gitlab')}${host('gitlab-expired')}`);
    const config = loadConfig({
      DATABASE_URL: database.url,
      REDIS_URL: TEST_REDIS_URL,
      VAULT_ADDR: vault.addr,
      VAULT_TOKEN: 'root-for-token-expiry',
      DEPLOYKEY_CONFIG: join(dir, 'config.yaml'),
      DEPLOYKEY_HOST_GITLAB_TOKEN: LATER,
      DEPLOYKEY_HOST_GITLAB_EXPIRED_TOKEN: EXPIRED,
    });
    container = createContainer(config, captured.logger);
    app = await buildApp(container);
  });
  afterAll(async () => {
    await app?.close();
    await container?.close();
    await vault?.close();
    await database?.drop();
  });

  it('answers 503 naming the host whose token is refused, keeps serving, and shows the seconds left', async () => {
    await container.connect();
    const readyz = async () => {
      const response = await app.inject({ method: 'GET', url: '/readyz' });
      return { status: response.statusCode, body: response.json(), text: response.body };
    };
    const down = await eventually(
      async () => {
        const answer = await readyz();
        return answer.status === 503 && answer;
      },
      { what: '/readyz to name the refused token' },
    );
    expect(down.body).toMatchObject({
      code: 'not-ready',
      failed: ['host-token:gitlab-expired'],
      checks: {
        postgres: 'ok',
        redis: 'ok',
        vault: 'ok',
        'host-token:gitlab': 'ok',
        'host-token:gitlab-expired': 'failed',
      },
    });
    expect(down.text).not.toContain(EXPIRED);
    const reason = captured.lines.find((line) => line.includes('"msg":"not ready"'));
    expect(reason).toContain('Token is expired');
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);

    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain('deploykey_host_credential_expiry_seconds{host="gitlab-expired"} 0');
    expect(metrics).toMatch(/deploykey_host_credential_expiry_seconds\{host="gitlab"\} (\d+)/);
    const left = Number(/deploykey_host_credential_expiry_seconds\{host="gitlab"\} (\d+)/.exec(metrics)![1]);
    expect(left).toBeGreaterThan(59 * 86_400);
    expect(metrics).toContain('deploykey_host_credential_expiring{host="gitlab"} 0');
    expect(metrics).not.toContain(EXPIRED);
    expect(captured.text()).not.toContain(EXPIRED);
    expect(captured.text()).not.toContain(LATER);
  });
});
