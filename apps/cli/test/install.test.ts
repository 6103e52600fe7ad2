import { execFile, spawn } from 'node:child_process';
import { lstat, mkdir, readdir, readlink, realpath, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from './support/harness.js';

const exec = promisify(execFile);
const checkout = fileURLToPath(new URL('../../../', import.meta.url));
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups) await c();
});

/** Every symbolic link under `dir`, with where it points. */
async function links(dir: string): Promise<{ path: string; target: string }[]> {
  const found: { path: string; target: string }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isSymbolicLink())
      found.push({ path, target: resolve(dirname(path), await readlink(path)) });
    else if (entry.isDirectory()) found.push(...(await links(path)));
  }
  return found;
}

// The documented way to put `epoch` on the PATH from a checkout (`pnpm cli:install`) packs
// @epoch/cli with its workspace packages inside and installs that tarball with npm: the same
// install a machine without the checkout does. Slow (npm fetches the dependencies and
// better-sqlite3 may compile), so one install serves every check.
// npm 11.19 run by Node 24.22 stopped for good in 3 of 8 installs of this tarball on the CI
// machine (Linux 6.18 in a Firecracker VM): main thread in epoll_wait, no child, no I/O, once
// right after logging that better-sqlite3's install script runs; none of the runs on Node 20
// did. Until that is understood, the install is tested on Node 20 and 22 only (.ci/run runs it
// on the machine's Node 20); the suites on Node 24 run everything else.
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

describe('epoch installed with `pnpm cli:install` from its packed tarball', () => {
  it.skipIf(NODE_MAJOR >= 24)(
    'puts a working epoch on the PATH that needs nothing from the checkout [only on Node 20 and 22]',
    async () => {
      const prefix = await tempDir('epoch-prefix-', cleanups);
      const install = await exec(process.execPath, [join(checkout, 'scripts/install-cli.mjs')], {
        cwd: checkout,
        // npm reads its global prefix from npm_config_prefix: a private "global" install.
        env: { ...process.env, npm_config_prefix: prefix },
        maxBuffer: 64 * 1024 * 1024,
      });
      const bin = join(prefix, 'bin');
      expect(install.stderr).toContain(`installed epoch 0.1.0 as ${join(bin, 'epoch')}`);
      expect((await lstat(join(bin, 'epoch'))).isSymbolicLink()).toBe(true);

      // Nothing installed points back into the checkout: it is a copy, as on another machine.
      const root = await realpath(prefix);
      for (const link of await links(prefix)) {
        expect(link.target.startsWith(root) || link.target.startsWith(prefix), link.path).toBe(
          true,
        );
      }
      const installed = join(prefix, 'lib', 'node_modules', '@epoch', 'cli');
      for (const name of ['oci', 'registry', 'server', 'store', 'web']) {
        const dir = join(installed, 'node_modules', '@epoch', name);
        expect((await lstat(dir)).isDirectory(), name).toBe(true);
      }

      // Run from elsewhere with only the prefix and this Node on the PATH.
      const cwd = await tempDir('epoch-elsewhere-', cleanups);
      const env = {
        PATH: [bin, dirname(process.execPath), '/usr/bin', '/bin'].join(':'),
        HOME: cwd,
        EPOCH_LOG_LEVEL: 'info',
      };
      const version = await exec('epoch', ['version'], { cwd, env });
      expect(version.stdout).toBe('epoch 0.1.0\n');
      const help = await exec('epoch', ['--help'], { cwd, env });
      expect(help.stdout).toContain('push');
      expect(help.stdout).toContain('serve');

      // The bundled server with its native SQLite, the dashboard, and a push with the client.
      await writeFile(join(cwd, 's3.env'), '');
      const serve = spawn('epoch', ['serve', '--addr', '127.0.0.1:0', '--data-dir', 'data'], {
        cwd,
        env: { ...env, EPOCH_S3_ENV_FILE: join(cwd, 's3.env') },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const closed = new Promise<number | null>((r) => serve.on('close', (code) => r(code)));
      let out = '';
      const url = await new Promise<string>((resolve, reject) => {
        serve.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const match = /"url":"([^"]+)"/.exec(out);
          if (match?.[1]) resolve(match[1]);
        });
        serve.on('close', () => reject(new Error(`epoch serve exited: ${out}`)));
      });
      try {
        const page = await fetch(`${url}/`);
        expect(page.status).toBe(200);
        expect(await page.text()).toContain('<!doctype html>');
        await mkdir(join(cwd, 'vm'));
        await writeFile(join(cwd, 'vm', 'memory-ranges'), Buffer.alloc(4096, 1));
        const push = await exec('epoch', ['push', 'vm', '-t', 'v1', '--from-dir', 'vm'], {
          cwd,
          env: { ...env, EPOCH_SERVER: url },
        });
        expect(push.stdout).toMatch(/^vm:v1@sha256:/);
        const ls = await exec('epoch', ['ls', 'vm', '--json'], {
          cwd,
          env: { ...env, EPOCH_SERVER: url },
        });
        expect(JSON.parse(ls.stdout)).toEqual(['v1']);
      } finally {
        serve.kill('SIGTERM');
        expect(await closed).toBe(0);
      }
    },
    900_000,
  );
});
