// The status page (service.md §2, `GET /`): one static HTML page with its script and style,
// shipped with the service (no CDN, no build step). The page reads the JSON API with fetch
// (rules, streams, alerts, the late side output, backtest) and refreshes itself. The three
// files live in `src/api/status/` and are read once when the plugin registers; they are found
// from the package root (the directory holding package.json, walking up from this module), so
// the same code works from `dist/src/api/routes/` and from the sources under vitest.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { RouteContext } from '../server.js';

/** The directory of the nearest package.json at or above `from`. */
export function packageRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`status page: no package.json above ${from}`);
    dir = parent;
  }
}

export function statusDir(): string {
  return join(packageRoot(), 'src', 'api', 'status');
}

const FILES = {
  html: { name: 'page.html', type: 'text/html; charset=utf-8' },
  js: { name: 'page.js', type: 'text/javascript; charset=utf-8' },
  css: { name: 'page.css', type: 'text/css; charset=utf-8' },
} as const;

/** Only our own script, style and API: nothing inline, nothing from elsewhere. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export const statusRoutes: FastifyPluginAsync<RouteContext> = async (app) => {
  const dir = statusDir();
  const body = {
    html: readFileSync(join(dir, FILES.html.name), 'utf8'),
    js: readFileSync(join(dir, FILES.js.name), 'utf8'),
    css: readFileSync(join(dir, FILES.css.name), 'utf8'),
  };
  const serve = (which: keyof typeof FILES) => async (_req: unknown, reply: FastifyReply) =>
    reply
      .type(FILES[which].type)
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', CSP)
      .send(body[which]);

  app.get('/', serve('html'));
  app.get('/status/page.js', serve('js'));
  app.get('/status/page.css', serve('css'));
};
