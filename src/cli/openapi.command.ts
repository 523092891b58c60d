import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { loadConfig } from '../config.ts';
import { type ContainerOverrides, createContainer } from '../container.ts';
import { type App, buildApp } from '../http/app.ts';
import { openApiDocument, openApiYaml } from '../http/openapi.ts';
import { createLogger } from '../log.ts';
import { parseCommandArgs } from './client/command-support.ts';
import { UsageError } from './usage-error.ts';

export const OPENAPI_USAGE = `usage: deploykey openapi [--output FILE] [--check]

Writes the HTTP contract (OpenAPI 3.1) generated from the route schemas. Needs no database, Redis or Vault.

  --output FILE   where to write it (default: openapi.yaml; "-" for stdout)
  --check         write nothing; exit 1 if FILE differs from what the routes generate

examples:
  deploykey openapi
  deploykey openapi --output - | grep '^  /v1/'
  deploykey openapi --check`;

// Port 1 refuses at once: the routes only use the container inside handlers, which never run here.
const OFFLINE_ENV = {
  DATABASE_URL: 'postgres://openapi@127.0.0.1:1/openapi',
  REDIS_URL: 'redis://127.0.0.1:1',
  VAULT_ADDR: 'http://127.0.0.1:1',
  VAULT_TOKEN: 'openapi',
  LOG_LEVEL: 'silent',
};

export interface OfflineApp {
  app: App;
  close(): Promise<void>;
}

/** The real app, ready, on a container whose Postgres, Redis and Vault addresses lead nowhere. */
export async function openOfflineApp(overrides: ContainerOverrides = {}): Promise<OfflineApp> {
  const container = createContainer(loadConfig(OFFLINE_ENV), createLogger('silent'), overrides);
  // Redis connects as soon as the container exists; closing stops its reconnect attempts.
  const app = await buildApp(container).catch(async (error: unknown) => {
    await container.close();
    throw error;
  });
  const close = async () => {
    await app.close();
    await container.close();
  };
  try {
    await app.ready();
  } catch (error) {
    await close();
    throw error;
  }
  return { app, close };
}

/** The spec as `openapi.yaml` holds it. */
export async function generateOpenApiYaml(): Promise<string> {
  const { app, close } = await openOfflineApp();
  try {
    return openApiYaml(openApiDocument(app));
  } finally {
    await close();
  }
}

export async function runOpenApiCommand(args: string[]): Promise<void> {
  const { values } = parseCommandArgs(
    { args, options: { output: { type: 'string' }, check: { type: 'boolean' } } },
    OPENAPI_USAGE,
  );
  const output = values.output ?? 'openapi.yaml';
  if (values.check && output === '-') throw new UsageError('--check needs a file, not "-"', OPENAPI_USAGE);
  const yaml = await generateOpenApiYaml();
  if (output === '-') {
    process.stdout.write(yaml);
    return;
  }
  const path = resolve(output);
  if (values.check) {
    const current = await readFile(path, 'utf8').catch(() => undefined);
    if (current !== yaml) {
      console.error(`deploykey: ${path} is out of date with the routes; run npm run openapi`);
      process.exitCode = 1;
    }
    return;
  }
  await writeFile(path, yaml);
  console.error(`wrote ${path}`);
}
