// `npx -y pnpm@10 cli:install`: puts a real `epoch` on the PATH from this checkout. It builds,
// packs @epoch/cli with its workspace packages inside (scripts/pack-cli.mjs) and installs that
// tarball with `npm install -g`, the same way it installs on a machine without the checkout.
// npm's global prefix decides where it lands (`npm_config_prefix=~/.local` for a user install);
// `npm uninstall -g @epoch/cli` removes it.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { root } from './lib/build.mjs';

const npm = (args, options = {}) =>
  execFileSync('npm', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...options });

const out = mkdtempSync(join(tmpdir(), 'epoch-cli-install-'));
try {
  const packed = spawnSync(process.execPath, [join(root, 'scripts/pack-cli.mjs'), '--out', out], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (packed.status !== 0) process.exit(packed.status ?? 1);
  const tarball = packed.stdout.trim();

  // npm 11 asks for install scripts to be allowed by name (better-sqlite3 compiles or fetches
  // its native module); older npm has no such setting and runs them anyway.
  const allowScripts = npm(['config', 'get', 'allow-scripts']).trim() !== 'undefined';
  process.stderr.write(
    'cli:install: npm install -g (better-sqlite3 may compile from source: g++, make, python3)\n',
  );
  const install = spawnSync(
    'npm',
    [
      'install',
      '--global',
      '--no-fund',
      '--no-audit',
      // The install scripts' output (better-sqlite3's compile) shows, not a silent minute.
      '--foreground-scripts',
      ...(allowScripts ? ['--allow-scripts=better-sqlite3'] : []),
      tarball,
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  if (install.status !== 0) {
    process.stderr.write('cli:install: npm install -g failed (its output above says why)\n');
    process.exit(install.status ?? 1);
  }

  const prefix = npm(['prefix', '--global']).trim();
  const bin = join(prefix, 'bin');
  const epoch = join(bin, 'epoch');
  if (!existsSync(epoch)) {
    process.stderr.write(`cli:install: npm reported success but ${epoch} does not exist\n`);
    process.exit(1);
  }
  const version = execFileSync(epoch, ['version'], { encoding: 'utf8' }).trim();
  process.stderr.write(`cli:install: installed ${version} as ${epoch}\n`);
  const onPath = (process.env.PATH ?? '').split(delimiter).includes(bin);
  if (!onPath) {
    process.stderr.write(
      `cli:install: ${bin} is not on your PATH; add it (e.g. export PATH="${bin}:$PATH")\n`,
    );
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
