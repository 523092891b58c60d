import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { projectPath } from '../project-root.ts';

const UI_DIR = projectPath('src', 'ui');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

// The console renders data that callers chose (repository names, job ids), so the page may run
// only its own files: no inline script or style, no other origin, and DOM sinks like innerHTML
// refuse plain strings (Trusted Types) so a slip in app code cannot become script injection.
export const UI_CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');

interface Asset {
  body: Buffer;
  type: string;
}

async function loadAssets(dir: string): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>();
  for (const name of await readdir(dir)) {
    const type = CONTENT_TYPES[extname(name)];
    if (type) assets.set(name, { body: await readFile(join(dir, name)), type });
  }
  return assets;
}

function send(reply: FastifyReply, asset: Asset) {
  return reply
    .header('content-type', asset.type)
    .header('content-security-policy', UI_CONTENT_SECURITY_POLICY)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cross-origin-opener-policy', 'same-origin')
    .header('cross-origin-resource-policy', 'same-origin')
    .header('x-frame-options', 'DENY')
    .header('cache-control', 'no-cache')
    .send(asset.body);
}

/**
 * The audit console at `/ui`: static files read once at start-up from this folder. Files are looked
 * up by exact name in that set, so no request path ever reaches the file system.
 */
export function uiRoutes(options: { dir?: string } = {}): FastifyPluginAsync {
  return async (app) => {
    const dir = options.dir ?? UI_DIR;
    const assets = await loadAssets(dir).catch(() => new Map<string, Asset>());
    const index = assets.get('index.html');
    // A build that compiled this file but did not copy the static files next to it must not take
    // the API down with it: the console is then simply not served.
    if (!index) {
      app.log.warn({ dir }, 'audit console files not found; /ui is not served');
      return;
    }

    const page = { logLevel: 'warn' as const };
    app.get('/ui', page, async (_request, reply) => send(reply, index));
    app.get('/ui/', page, async (_request, reply) => send(reply, index));
    app.get<{ Params: { file: string } }>('/ui/:file', page, async (request, reply) => {
      const asset = request.params.file === 'index.html' ? index : assets.get(request.params.file);
      if (!asset) return reply.callNotFound();
      return send(reply, asset);
    });
  };
}
