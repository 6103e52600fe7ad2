import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import type { Context } from 'hono';
import type { Env } from '../http/env.js';

/**
 * The dashboard's Content-Security-Policy: everything from this origin only, no inline or eval'd
 * script, no plugins, no framing. React's `style` props set CSSOM properties, which `style-src
 * 'self'` allows; the build has no inline `<style>` or `<script>`.
 */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * The built dashboard's directory: `EPOCH_WEB_DIR` when set, else the `dist/` of the installed
 * `@epoch/web` package, or undefined when neither exists.
 */
export function defaultWebDir(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    return join(dirname(require.resolve('@epoch/web/package.json')), 'dist');
  } catch {
    return undefined;
  }
}

/**
 * Serves the dashboard from `dir`: files under `assets/` (content-hashed by Vite) are cached for a
 * year, anything else that is not a file gets `index.html` (the SPA's client-side routes, deep
 * links included) with `no-cache`. Every answer carries the CSP and the usual hardening headers.
 * Without a build, `/` is a JSON 404 that says so. Only GET and HEAD outside the server's paths
 * (`isServerPath`) come here.
 */
export function dashboardRoute(dir: string | undefined) {
  const root = dir ? resolve(dir) : undefined;
  return async (c: Context<Env>): Promise<Response> => {
    const path = c.req.path;
    const index = root ? join(root, 'index.html') : undefined;
    if (!root || !index || !(await isFile(index))) {
      return notFound(c, 'the dashboard is not built (run pnpm build, or set EPOCH_WEB_DIR)');
    }
    c.header('Content-Security-Policy', DASHBOARD_CSP);
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    c.header('X-Frame-Options', 'DENY');

    let file: string | undefined;
    try {
      file = resolve(root, `.${decodeURIComponent(path)}`);
    } catch {
      file = undefined;
    }
    if (file && file !== root && file.startsWith(root + sep) && (await isFile(file))) {
      const size = (await stat(file)).size;
      const hashed = file.startsWith(join(root, 'assets') + sep);
      c.header('Content-Type', TYPES[extname(file)] ?? 'application/octet-stream');
      c.header('Content-Length', String(size));
      c.header('Cache-Control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache');
      if (c.req.method === 'HEAD') return c.body(null, 200);
      return c.body(Readable.toWeb(createReadStream(file)) as ReadableStream, 200);
    }
    // A missing hashed asset is a real 404 (an old page asking for a replaced bundle), not the app.
    if (path.startsWith('/assets/')) {
      return notFound(c, `no such file: ${path}`);
    }
    c.header('Content-Type', TYPES['.html'] as string);
    c.header('Cache-Control', 'no-cache');
    if (c.req.method === 'HEAD') return c.body(null, 200);
    return c.body(await readFile(index, 'utf8'), 200);
  };
}

/** The control API's error shape, which is what a browser client of this origin reads. */
function notFound(c: Context<Env>, error: string): Response {
  return c.json({ error, code: 'NOT_FOUND' }, 404);
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
