// The stand-ins' optional HTTPS listeners: a client that trusts only the CA the sandbox made (the
// way gh, glab or the vault CLI are pointed at it) reaches GitHub, GitLab and Vault over TLS; a
// client that does not trust it is refused during the handshake.

import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StandIns, startStandIns } from '../../sandbox/stand-ins.ts';
import { appJwt } from '../support/github-apps.ts';

let standIns: StandIns;

beforeAll(async () => {
  standIns = await startStandIns({ repositories: ['acme/models'], tls: true });
});
afterAll(() => standIns.close());

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  peer: X509Certificate;
}

function request(
  url: string,
  options: { method?: string; headers?: Record<string, string>; ca?: string } = {},
) {
  return new Promise<Answer>((resolve, reject) => {
    const outgoing = https.request(
      url,
      {
        method: options.method ?? 'GET',
        headers: options.headers,
        ...(options.ca ? { ca: options.ca } : {}),
      },
      (response) => {
        const peer = new X509Certificate((response.socket as TLSSocket).getPeerCertificate().raw);
        let body = '';
        response.setEncoding('utf8').on('data', (chunk: string) => {
          body += chunk;
        });
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body, peer }),
        );
      },
    );
    outgoing.on('error', reject);
    outgoing.end();
  });
}

describe('HTTPS listeners with a CA made for the run', () => {
  it('writes the CA to a file, a CA certificate that signed the listeners’ certificate', async () => {
    const tls = standIns.tls!;
    expect(await readFile(tls.caFile, 'utf8')).toBe(tls.caCertPem);
    const ca = new X509Certificate(tls.caCertPem);
    expect(ca.ca).toBe(true);
    const answer = await request(`${standIns.vault.httpsAddr}/v1/sys/health`, { ca: tls.caCertPem });
    expect(answer.peer.verify(ca.publicKey)).toBe(true);
    expect(answer.peer.checkIP('127.0.0.1')).toBe('127.0.0.1');
  });

  it('serves GitHub (also as an Enterprise host under /api/v3) with https URLs in its bodies', async () => {
    const { api, token } = standIns.github;
    expect(api.httpsUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const answer = await request(`${api.httpsUrl}/api/v3/repos/acme/models`, {
      ca: standIns.tls!.caCertPem,
      headers: { authorization: `token ${token}`, 'user-agent': 'tls-test' },
    });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body).url).toBe(`${api.httpsUrl}/api/v3/repos/acme/models`);
    expect(JSON.parse(answer.body).ssh_url).toBe(standIns.github.ssh.cloneUrl('acme/models'));
  });

  it('serves the sandbox’s GitHub App there: its JWT accepted, installation URLs on https', async () => {
    const { api, app } = standIns.github;
    const nowSeconds = Math.floor(Date.now() / 1000);
    const jwt = await appJwt(await readFile(app.privateKeyPath, 'utf8'), {
      iss: app.id,
      iat: nowSeconds - 60,
      exp: nowSeconds + 540,
    });
    const installation = `${api.httpsUrl}/api/v3/app/installations/${app.installationId}`;
    const answer = await request(installation, {
      ca: standIns.tls!.caCertPem,
      headers: { authorization: `Bearer ${jwt}`, 'user-agent': 'tls-test' },
    });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body).access_tokens_url).toBe(`${installation}/access_tokens`);
  });

  it('serves GitLab and Vault, Vault’s LIST method included', async () => {
    const ca = standIns.tls!.caCertPem;
    const version = await request(`${standIns.gitlab.api.httpsUrl}/version`, {
      ca,
      headers: { 'PRIVATE-TOKEN': standIns.gitlab.token },
    });
    expect(version.status).toBe(200);
    expect(JSON.parse(version.body).version).toMatch(/^\d+\.\d+\.\d+$/);

    const vault = standIns.vault.httpsAddr!;
    const write = await fetch(`${standIns.vault.addr}/v1/secret/data/tls/one`, {
      method: 'POST',
      headers: { 'X-Vault-Token': standIns.vault.token },
      body: JSON.stringify({ data: { a: '1' } }),
    });
    expect(write.status).toBe(200);
    const listed = await request(`${vault}/v1/secret/metadata/tls`, {
      ca,
      method: 'LIST',
      headers: { 'X-Vault-Token': standIns.vault.token },
    });
    expect(listed.status).toBe(200);
    expect(JSON.parse(listed.body).data.keys).toEqual(['one']);
  });

  it('is refused by a client that does not trust the sandbox CA', async () => {
    await expect(request(`${standIns.vault.httpsAddr}/v1/sys/health`)).rejects.toMatchObject({
      code: expect.stringMatching(/SELF_SIGNED|UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY/),
    });
  });
});
