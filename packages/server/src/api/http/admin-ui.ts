import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';

/**
 * The admin UI (spec §11.2): the single-page app of packages/admin, served on the HTTP port under
 * AdminBasePath. `GET <base>/` and `<base>/admin/*` answer index.html with `"assets/` rewritten to
 * `"<base>/assets/` and `PUBLIC-PATH-VARIABLE` to the base; `<base>/assets/<file>` the app's files;
 * `<base>/favicon.ico` its icon. Unlike DTM, nothing is ever proxied: when the app was not built, these
 * routes answer 503 saying so.
 */
export interface AdminUiOptions {
  /** AdminBasePath: '' or '/' for the root, else a path like `/dtx` (no trailing slash). */
  basePath: string;
  /** The admin package's directory (tests); default: `@dtx/admin` resolved from this package. */
  dir?: string;
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.map': 'application/json; charset=utf-8',
  '.png': 'image/png',
};
/** Asset names the UI ships: a flat name, so no request can reach outside the two asset directories. */
const ASSET_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*\.(js|css|svg|map|png)$/;
const NOT_BUILT =
  'The dtx admin UI is not built: run `npm run build` in the dtx checkout (it compiles packages/admin), then reload.\n';

/** The admin package's directory: `@dtx/admin` as node resolves it, else its place beside this package. */
export function adminPackageDir(): string {
  try {
    return dirname(createRequire(import.meta.url).resolve('@dtx/admin/package.json'));
  } catch {
    // dist/src/api/http/admin-ui.js → packages/server → packages/admin
    return fileURLToPath(new URL('../../../../../admin/', import.meta.url));
  }
}

/** '' for the root, else '/a/b' (AdminBasePath as given, with a trailing slash dropped). */
export function normalBasePath(p: string): string {
  return p === '/' ? '' : p.replace(/\/+$/, '');
}

export function registerAdminUi(app: FastifyInstance, o: AdminUiOptions): void {
  const base = normalBasePath(o.basePath);
  const dir = o.dir ?? adminPackageDir();
  const assetDirs = [join(dir, 'dist', 'assets'), join(dir, 'public')];
  // files are read once and kept: the UI is a few small files that change only with a new build
  const cache = new Map<string, Buffer | null>();
  const read = (path: string): Buffer | null => {
    let b = cache.get(path);
    if (b === undefined) {
      try {
        b = readFileSync(path);
      } catch {
        b = null;
      }
      cache.set(path, b);
    }
    return b;
  };
  let index: string | undefined;
  const indexHtml = (): string | undefined => {
    if (index !== undefined) return index;
    const raw = read(join(dir, 'public', 'index.html'));
    // index.html without the compiled app is not a UI: say it is not built
    if (!raw || !read(join(dir, 'dist', 'assets', 'main.js'))) {
      cache.clear();
      return undefined;
    }
    index = raw.toString('utf8').replaceAll('"assets/', `"${base}/assets/`).replaceAll('PUBLIC-PATH-VARIABLE', base);
    return index;
  };
  const notBuilt = (reply: FastifyReply) => reply.code(503).type('text/plain; charset=utf-8').send(NOT_BUILT);
  const sendIndex = async (_req: unknown, reply: FastifyReply) => {
    const html = indexHtml();
    if (html === undefined) return notBuilt(reply);
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(html);
  };
  // the page and its files need no token (the API calls they make do): open under Auth.*
  const open = { config: { auth: 'open' as const } };
  app.get(`${base}/`, open, sendIndex);
  if (base !== '') app.get(base, open, sendIndex);
  app.get(`${base}/admin`, open, sendIndex);
  app.get(`${base}/admin/*`, open, sendIndex);
  const sendAsset = (name: string, reply: FastifyReply) => {
    const ext = name.slice(name.lastIndexOf('.'));
    if (!ASSET_NAME.test(name)) return reply.code(404).type('text/plain').send('404 page not found');
    for (const d of assetDirs) {
      const b = read(join(d, name));
      if (b)
        return reply
          .type(TYPES[ext] ?? 'application/octet-stream')
          .header('cache-control', 'no-cache')
          .send(b);
    }
    if (indexHtml() === undefined) return notBuilt(reply);
    return reply.code(404).type('text/plain').send('404 page not found');
  };
  app.get(`${base}/assets/:name`, open, async (req, reply) => sendAsset((req.params as { name: string }).name, reply));
  app.get(`${base}/favicon.ico`, open, async (_req, reply) => sendAsset('favicon.svg', reply));
}
