// Builds workspace packages through turbo (a cache hit after the first time), naming each package
// on stderr as turbo starts building it: a fresh clone builds for about a minute, and a silent
// minute looks like a hang. A full cache hit prints nothing.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout's root directory (with a trailing slash). */
export const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * turbo runs each build through the package manager and refuses to start without `pnpm` on the
 * PATH, which `npx -y pnpm@10` does not leave there. Without one, a `pnpm` shim in the checkout's
 * node_modules runs the pnpm that called us (npm_execpath), else packageManager's major version
 * through npx, as the README does (`npx -y pnpm@10`).
 */
export function pathWithPnpm(env = process.env) {
  const path = env.PATH ?? '';
  if (path.split(delimiter).some((dir) => dir && existsSync(join(dir, 'pnpm')))) return path;
  const dir = join(root, 'node_modules', '.epoch-bin');
  const execpath = env.npm_execpath;
  const { packageManager } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const command =
    execpath && /pnpm/.test(execpath)
      ? `exec "${process.execPath}" "${execpath}" "$@"`
      : `exec npx -y ${packageManager.replace(/^(pnpm@\d+).*/, '$1')} "$@"`;
  mkdirSync(dir, { recursive: true });
  // Written aside and renamed: another build starting at the same moment never runs half a file.
  const tmp = join(dir, `pnpm.${process.pid}`);
  writeFileSync(tmp, `#!/bin/sh\n${command}\n`);
  chmodSync(tmp, 0o755);
  renameSync(tmp, join(dir, 'pnpm'));
  return `${dir}${delimiter}${path}`;
}

/**
 * Runs `turbo run build --filter=<filter>` in the checkout. Resolves when it succeeded; on
 * failure prints turbo's output and exits the process with its status.
 */
export async function build(filter, { label = 'epoch' } = {}) {
  const turbo = join(root, 'node_modules', '.bin', 'turbo');
  if (!existsSync(turbo)) {
    process.stderr.write(
      `${label}: the checkout at ${root} has no dependencies installed: run \`npx -y pnpm@10 install\` there first\n`,
    );
    process.exit(1);
  }
  const started = Date.now();
  const built = new Set();
  let output = '';
  let pending = '';
  const child = spawn(
    turbo,
    ['run', 'build', `--filter=${filter}`, '--output-logs=new-only', '--log-prefix=task'],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        PATH: pathWithPnpm(),
        TURBO_TELEMETRY_DISABLED: '1',
        FORCE_COLOR: '0',
        NO_COLOR: '1',
      },
    },
  );
  const onOutput = (chunk) => {
    const text = chunk.toString();
    output += text;
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      // biome-ignore lint/suspicious/noControlCharactersInRegex: strips terminal colour codes
      const plain = line.replace(/\u001b\[[0-9;]*m/g, '');
      const miss = /^(@epoch\/[\w-]+):build: cache miss, executing/.exec(plain);
      if (!miss || built.has(miss[1])) continue;
      if (built.size === 0) {
        process.stderr.write(
          `${label}: building the checkout (turbo; about a minute on a fresh clone, cached after)\n`,
        );
      }
      built.add(miss[1]);
      process.stderr.write(`${label}: building ${miss[1]}…\n`);
    }
  };
  child.stdout.on('data', onOutput);
  child.stderr.on('data', onOutput);
  const code = await new Promise((resolve) => child.on('close', (c) => resolve(c)));
  if (code !== 0) {
    process.stderr.write(output);
    process.stderr.write(`${label}: the build failed (turbo's output above says why)\n`);
    process.exit(code ?? 1);
  }
  if (built.size > 0) {
    const seconds = ((Date.now() - started) / 1000).toFixed(0);
    process.stderr.write(
      `${label}: built ${built.size} package${built.size === 1 ? '' : 's'} in ${seconds} s\n`,
    );
  }
}
