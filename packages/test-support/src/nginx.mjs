// One way to run the repository's nginx vhost (deploy/nginx/epoch.conf) on loopback, for the
// tests and the benchmarks: the vhost exactly as shipped, with only its upstream servers and its
// listen address replaced, inside a minimal main config whose paths all live in a scratch dir.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const VHOST = fileURLToPath(new URL('../../../deploy/nginx/epoch.conf', import.meta.url));

/** True when an nginx binary is installed (apt-get install nginx). */
export const hasNginx = ['/usr/sbin/nginx', '/usr/bin/nginx'].some((p) => existsSync(p));

/** A free loopback port (closed again; nginx binds it right after). */
export function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * The vhost with `upstreams` (host:port each) as its servers and a loopback listen port. The
 * shipped file names one placeholder server; every line of the upstream block that names a
 * server is replaced, so its other settings (keepalive, max_fails…) stay as shipped.
 */
export async function vhostFor(upstreams, port) {
  const text = await readFile(VHOST, 'utf8');
  const servers = upstreams.map((u) => `    server ${u};`).join('\n');
  let replaced = false;
  const out = text
    .split('\n')
    .flatMap((line) => {
      if (!/^\s*server\s+127\.0\.0\.1:4300\b/.test(line)) return [line];
      if (replaced) return [];
      replaced = true;
      // Keep the shipped server parameters (max_fails, fail_timeout) on every server.
      const params = /127\.0\.0\.1:4300(.*);/.exec(line)?.[1] ?? '';
      return [servers.replace(/;/g, `${params};`)];
    })
    .join('\n')
    .replace(/listen 80;/, `listen 127.0.0.1:${port};`);
  if (!replaced) throw new Error(`${VHOST}: no "server 127.0.0.1:4300" line to replace`);
  return out;
}

/**
 * Starts nginx with the vhost in front of `upstreams` and waits until it answers /healthz.
 * Returns its URL, its scratch dir (the error log is `error.log` there) and `stop()`.
 */
export async function startNginx(upstreams, options = {}) {
  const work = await mkdtemp(join(options.dir ?? tmpdir(), 'epoch-nginx-'));
  const port = await freePort();
  await writeFile(join(work, 'epoch.conf'), await vhostFor(upstreams, port));
  await writeFile(
    join(work, 'nginx.conf'),
    `daemon off;\nworker_processes ${options.workers ?? 'auto'};\npid ${work}/nginx.pid;\n` +
      `error_log ${work}/error.log warn;\nevents { worker_connections 1024; }\n` +
      `http {\n  access_log off;\n  client_body_temp_path ${work}/body;\n` +
      `  proxy_temp_path ${work}/proxy;\n  include ${work}/epoch.conf;\n}\n`,
  );
  const args = ['-p', work, '-c', join(work, 'nginx.conf')];
  const url = `http://127.0.0.1:${port}`;
  const stop = async (child) => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    await rm(work, { recursive: true, force: true });
  };
  if (options.start === false) return { url, dir: work, args, stop: () => stop(undefined) };
  const child = spawn('nginx', args, { stdio: 'inherit' });
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) break;
    const res = await fetch(`${url}/healthz`).catch(() => undefined);
    if (res?.ok) return { url, dir: work, args, child, stop: () => stop(child) };
    await new Promise((r) => setTimeout(r, 50));
  }
  await stop(child);
  throw new Error('nginx did not come up');
}
