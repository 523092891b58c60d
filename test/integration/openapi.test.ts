// The published HTTP contract: openapi.yaml is exactly what the route schemas generate, covers every
// route and nothing else, documents every error as problem+json, and the service serves it with a
// /docs page that works without any network. No Postgres, Redis or Vault is involved.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { generateOpenApiYaml, type OfflineApp, openOfflineApp } from '../../src/cli/openapi.command.ts';
import { type OpenApiDocument, openApiDocument, registeredRoutes } from '../../src/http/openapi.ts';
import { type CliResult, runCli } from '../support/cli.ts';

const SPEC_PATH = fileURLToPath(new URL('../../openapi.yaml', import.meta.url));
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'trace'];
const PROBLEM_REF = { $ref: '#/components/schemas/Problem' };
const PROBES = ['GET /healthz', 'GET /metrics', 'GET /readyz'];
// Served, but not part of the API: the documentation itself and the audit console's pages.
const isInternal = (url: string) =>
  url.startsWith('/_') ||
  ['/docs', '/ui'].some((prefix) => url === prefix || url.startsWith(`${prefix}/`)) ||
  url === '/openapi.json' ||
  url === '/openapi.yaml';

type Operation = { security?: unknown[]; responses: Record<string, Record<string, unknown>> };

function operationsOf(document: OpenApiDocument): [string, Operation][] {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, operation]): [string, Operation] => [
        `${method.toUpperCase()} ${path}`,
        operation as Operation,
      ]),
  );
}

let offline: OfflineApp;
let document: OpenApiDocument;
let baseUrl: string;
let outputDir: string;
let cliRun: Promise<CliResult>;

beforeAll(async () => {
  outputDir = await mkdtemp(join(tmpdir(), 'openapi-'));
  // The real command, with no database, Redis or Vault settings at all; it runs while the other tests do.
  cliRun = runCli(['openapi', '--output', join(outputDir, 'openapi.yaml')], {}, 55_000);
  offline = await openOfflineApp();
  document = openApiDocument(offline.app);
  baseUrl = await offline.app.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await offline?.close();
  await cliRun?.catch(() => undefined);
  if (outputDir) await rm(outputDir, { recursive: true, force: true });
});

describe('openapi.yaml', () => {
  it('is exactly what the route schemas generate', async () => {
    const committed = await readFile(SPEC_PATH, 'utf8').catch(() => '(openapi.yaml is missing)');
    const generated = await generateOpenApiYaml();
    expect(generated, 'openapi.yaml differs from the routes: run npm run openapi and commit it').toBe(
      committed,
    );
    expect(parse(committed).openapi).toBe('3.1.0');
  });

  it('is written by `deploykey openapi`, which needs no dependency and exits on its own', async () => {
    const result = await cliRun;
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(join(outputDir, 'openapi.yaml'), 'utf8')).toBe(await readFile(SPEC_PATH, 'utf8'));
  }, 60_000);

  it('documents every route the app registers, and only those', () => {
    const routes = registeredRoutes(offline.app)
      .filter((route) => route.method !== 'HEAD' && !isInternal(route.url))
      .map((route) => `${route.method} ${route.url.replace(/:(\w+)/g, '{$1}')}`)
      .sort();
    expect(routes).toEqual(expect.arrayContaining(['POST /v1/keys', 'DELETE /v1/keys/{id}', ...PROBES]));
    expect(
      operationsOf(document)
        .map(([name]) => name)
        .sort(),
    ).toEqual(routes);
  });

  it('documents every error as a Problem in application/problem+json, and a 4xx for each API call', () => {
    const findings: string[] = [];
    const unauthenticated: string[] = [];
    for (const [name, operation] of operationsOf(document)) {
      const errors = Object.entries(operation.responses).filter(([status]) => /^[45]/.test(status));
      for (const [status, response] of errors) {
        const content = response.content as Record<string, { schema: unknown }> | undefined;
        if (Object.keys(content ?? {}).join() !== 'application/problem+json') {
          findings.push(`${name} ${status} is not application/problem+json`);
        } else if (
          JSON.stringify(content?.['application/problem+json']?.schema) !== JSON.stringify(PROBLEM_REF)
        ) {
          findings.push(`${name} ${status} does not use the Problem schema`);
        }
      }
      if (operation.security?.length === 0) {
        unauthenticated.push(name);
        continue;
      }
      if (!errors.some(([status]) => status.startsWith('4'))) findings.push(`${name} documents no 4xx`);
      if (!operation.responses['401']) findings.push(`${name} takes a bearer token but documents no 401`);
    }
    expect(findings).toEqual([]);
    // Only the probes answer without credentials, and they are the only calls without a client error.
    expect(unauthenticated.sort()).toEqual(PROBES);
  });

  it('is as strict as the server: bounds, patterns, and every header the server sends', () => {
    const findings: string[] = [];
    for (const [name, operation] of operationsOf(document)) {
      const budgeted = '429' in operation.responses;
      for (const [status, response] of Object.entries(operation.responses)) {
        const headers = Object.keys((response.headers as Record<string, unknown> | undefined) ?? {});
        const wanted = [
          'x-request-id',
          ...(['409', '429', '503'].includes(status) ? ['retry-after'] : []),
          ...(budgeted && status.startsWith('2')
            ? ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']
            : []),
        ];
        for (const header of wanted) {
          if (!headers.includes(header)) findings.push(`${name} ${status} does not declare ${header}`);
        }
      }
      const parameters = (
        operation as { parameters?: { in: string; name: string; schema: Record<string, unknown> }[] }
      ).parameters;
      for (const parameter of parameters ?? []) {
        const { schema } = parameter;
        const bounded = schema.type !== 'string' || schema.pattern || schema.format || schema.enum;
        if (!bounded) findings.push(`${name} ${parameter.in} ${parameter.name} takes any string`);
      }
    }
    expect(findings).toEqual([]);
    const issue = document.paths['/v1/keys']!.post! as {
      responses: Record<string, { headers?: Record<string, unknown> }>;
      requestBody: { content: Record<string, { schema: { properties: Record<string, unknown> } }> };
    };
    expect(Object.keys(issue.responses['201']!.headers!)).toContain('idempotent-replayed');
    expect(issue.requestBody.content['application/json']!.schema.properties.ttlSeconds).toMatchObject({
      type: 'integer',
      minimum: 1,
    });
  });

  it('describes problems with the RFC 9457 members and bearer auth with both kinds of token', () => {
    const components = document.components as Record<string, Record<string, Record<string, unknown>>>;
    const problem = components.schemas?.Problem as {
      required: string[];
      properties: Record<string, unknown>;
    };
    expect(Object.keys(problem.properties)).toEqual([
      'type',
      'title',
      'status',
      'detail',
      'instance',
      'code',
    ]);
    expect(problem.required).toEqual(['type', 'title', 'status', 'code']);
    const bearer = components.securitySchemes?.bearerAuth as Record<string, string>;
    expect(bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(bearer.description).toContain('dkr_');
    expect(bearer.description).toContain('JWT');
    expect(document.security).toEqual([{ bearerAuth: [] }]);
  });
});

describe('the running service', () => {
  it('serves the committed spec at /openapi.yaml and the same document at /openapi.json', async () => {
    const yaml = await fetch(`${baseUrl}/openapi.yaml`);
    expect(yaml.status).toBe(200);
    expect(yaml.headers.get('content-type')).toContain('application/yaml');
    const text = await yaml.text();
    expect(text).toBe(await readFile(SPEC_PATH, 'utf8'));
    const json = await fetch(`${baseUrl}/openapi.json`);
    expect(json.status).toBe(200);
    expect(json.headers.get('content-type')).toContain('application/json');
    expect(JSON.parse(await json.text())).toEqual(parse(text));
  });

  it('answers errors with bodies the documented Problem schema accepts, extension members included', async () => {
    const ajv = new Ajv2020({ strict: false });
    addFormats.default(ajv);
    const components = document.components as { schemas: Record<string, object> };
    const validProblem = ajv.compile(components.schemas.Problem!);
    const documented = (name: string, status: number) =>
      Object.keys(operationsOf(document).find(([op]) => op === name)?.[1].responses ?? {}).includes(
        String(status),
      );

    const unauthorized = await fetch(`${baseUrl}/v1/keys`);
    expect(unauthorized.status).toBe(401);
    expect(documented('GET /v1/keys', 401)).toBe(true);
    expect(unauthorized.headers.get('content-type')).toContain('application/problem+json');
    expect(unauthorized.headers.get('www-authenticate')).toContain('Bearer');
    const body = await unauthorized.json();
    expect(validProblem(body), JSON.stringify(validProblem.errors)).toBe(true);
    expect(body).toMatchObject({ status: 401, code: 'unauthorized', instance: '/v1/keys' });

    // Nothing answers at the offline addresses, so readiness fails with its extension members intact.
    const notReady = await fetch(`${baseUrl}/readyz`);
    expect(notReady.status).toBe(503);
    expect(documented('GET /readyz', 503)).toBe(true);
    const problem = (await notReady.json()) as { failed: string[] };
    expect(validProblem(problem), JSON.stringify(validProblem.errors)).toBe(true);
    expect(problem).toMatchObject({ code: 'not-ready', checks: { postgres: 'failed', redis: 'failed' } });
    expect(problem.failed).toEqual(expect.arrayContaining(['postgres', 'redis', 'vault']));
  });

  it('serves /docs as an HTML page whose every asset comes from the service itself', async () => {
    const page = await fetch(`${baseUrl}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    const assets = [...(await page.text()).matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]!);
    expect(assets).toEqual(expect.arrayContaining(['/docs/static/swagger-ui-bundle.js']));
    for (const asset of assets) {
      expect(asset, 'no asset from another origin').toMatch(/^\/docs\//);
      expect((await fetch(`${baseUrl}${asset}`)).status, asset).toBe(200);
    }
  });

  it('renders every operation in a browser that may not reach any other origin', async () => {
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    try {
      const context = await browser.newContext();
      const elsewhere: string[] = [];
      await context.route('**/*', (route) => {
        if (route.request().url().startsWith(baseUrl)) return route.continue();
        elsewhere.push(route.request().url());
        return route.abort('internetdisconnected');
      });
      const tab = await context.newPage();
      const errors: string[] = [];
      tab.on('console', (message) => {
        if (message.type() === 'error') errors.push(message.text());
      });
      tab.on('pageerror', (error) => errors.push(error.message));
      expect((await tab.goto(`${baseUrl}/docs`))?.status()).toBe(200);
      await expect
        .poll(() => tab.locator('.opblock').count(), { timeout: 20_000 })
        .toBe(operationsOf(document).length);
      expect(await tab.locator('.info .title').textContent()).toContain('deploykey-rotator');
      expect(await tab.locator('.opblock-summary-path').allTextContents()).toContain('/v1/keys/{id}');
      expect(elsewhere).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 45_000);
});
