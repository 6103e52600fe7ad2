import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdir, readFile, realpath, symlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { startEpoch, tempDir } from './support/harness.js';

// `pnpm epoch …`, `pnpm start` and `node scripts/epoch.mjs` from a checkout.
const exec = promisify(execFile);
const checkout = fileURLToPath(new URL('../../../', import.meta.url));
const script = join(checkout, 'scripts', 'epoch.mjs');
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups) await c();
});

/** A PATH with this Node and the system's tools, but no pnpm and no turbo. */
const plainPath = [dirname(process.execPath), '/usr/bin', '/bin'].join(':');

/**
 * What a user's shell carries besides PATH and HOME: the machine's CA bundle (where TLS to the
 * npm registry goes through an intercepting proxy, a Node outside /usr does not find it in
 * /usr/etc/npmrc) and npm's download cache, so that `npx pnpm` is not fetched afresh per test.
 */
const machineEnv: Record<string, string> = {
  npm_config_cache: join(homedir(), '.npm'),
  ...Object.fromEntries(
    ['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'SSL_CERT_DIR', 'npm_config_cafile']
      .map((name) => [name, process.env[name]])
      .filter((entry): entry is [string, string] => entry[1] !== undefined),
  ),
};

/**
 * Starts `command` in its own process group on a fresh data directory, waits until the server
 * has started, sends SIGINT to the whole group (what Ctrl-C does) and returns how it ended.
 */
async function ctrlC(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; out: string }> {
  const dataDir = await tempDir('epoch-start-', cleanups);
  await writeFile(join(dataDir, 's3.env'), '');
  const child = spawn(command, args, {
    cwd: checkout,
    detached: true,
    env: {
      ...env,
      EPOCH_ADDR: '127.0.0.1:0',
      EPOCH_DATA_DIR: dataDir,
      EPOCH_S3_ENV_FILE: join(dataDir, 's3.env'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const started = new Promise<void>((resolve, reject) => {
    const collect = (d: Buffer) => {
      out += d.toString();
      if (out.includes('"msg":"index reconciled"')) resolve();
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('close', () =>
      reject(new Error(`${command} exited before the server started:\n${out}`)),
    );
  });
  const closed = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  await started;
  process.kill(-(child.pid as number), 'SIGINT');
  return { code: await closed, out };
}

/**
 * A checkout in miniature: the real scripts/epoch.mjs and scripts/lib/build.mjs, the real turbo,
 * and one workspace package named @epoch/cli whose build copies src/main.js to dist/. Building it
 * touches nothing the other tests use, so it can start from an empty turbo cache.
 */
async function miniatureCheckout(): Promise<string> {
  const dir = await tempDir('epoch-mini-checkout-', cleanups);
  const write = async (path: string, text: string) => {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  };
  await mkdir(join(dir, 'scripts', 'lib'), { recursive: true });
  await copyFile(script, join(dir, 'scripts', 'epoch.mjs'));
  await copyFile(join(checkout, 'scripts/lib/build.mjs'), join(dir, 'scripts/lib/build.mjs'));
  await mkdir(join(dir, 'node_modules', '.bin'), { recursive: true });
  await symlink(
    await realpath(join(checkout, 'node_modules/turbo')),
    join(dir, 'node_modules/turbo'),
  );
  await symlink('../turbo/bin/turbo', join(dir, 'node_modules/.bin/turbo'));
  const realTurbo = JSON.parse(await readFile(join(checkout, 'turbo.json'), 'utf8')) as {
    globalPassThroughEnv: string[];
  };
  const root = JSON.parse(await readFile(join(checkout, 'package.json'), 'utf8')) as {
    packageManager: string;
  };
  await write(
    'package.json',
    JSON.stringify({ name: 'mini', private: true, packageManager: root.packageManager }),
  );
  await write(
    'pnpm-workspace.yaml',
    'packages:\n  - apps/*\nmanagePackageManagerVersions: false\n',
  );
  await write(
    'turbo.json',
    JSON.stringify({
      // The real checkout's: a build that fetches pnpm through npx needs the machine's CA and proxy.
      globalPassThroughEnv: realTurbo.globalPassThroughEnv,
      tasks: { build: { dependsOn: ['^build'], inputs: ['src/**'], outputs: ['dist/**'] } },
    }),
  );
  await write(
    'apps/cli/package.json',
    JSON.stringify({
      name: '@epoch/cli',
      private: true,
      scripts: {
        build:
          "node -e \"require('fs').mkdirSync('dist',{recursive:true});require('fs').copyFileSync('src/main.js','dist/main.js')\"",
      },
    }),
  );
  await write('apps/cli/src/main.js', "console.log('cli', process.argv.slice(2).join(' '));\n");
  await write('.gitignore', 'node_modules/\ndist/\n.turbo/\n');
  // turbo caches only inside a git repository.
  const git = (...args: string[]) =>
    exec('git', ['-c', 'user.name=t', '-c', 'user.email=t@localhost', ...args], { cwd: dir });
  await git('init', '-q');
  await git('add', '-A');
  await git('commit', '-qm', 'mini');
  return dir;
}

describe('scripts/epoch.mjs', () => {
  it('names each package as a fresh checkout builds it, and is silent once cached', async () => {
    const mini = await miniatureCheckout();
    const cwd = await tempDir('epoch-caller-', cleanups);
    const env = { ...machineEnv, PATH: plainPath, HOME: cwd, TURBO_TELEMETRY_DISABLED: '1' };
    const first = await exec(process.execPath, [join(mini, 'scripts/epoch.mjs'), 'a', 'b'], {
      cwd,
      env,
    });
    expect(first.stderr).toMatch(
      /^epoch: building the checkout \(turbo; about a minute on a fresh clone, cached after\)\nepoch: building @epoch\/cli…\nepoch: built 1 package in \d+ s\n$/,
    );
    expect(first.stdout).toBe('cli a b\n');
    const again = await exec(process.execPath, [join(mini, 'scripts/epoch.mjs'), 'c'], {
      cwd,
      env,
    });
    expect(again.stderr).toBe('');
    expect(again.stdout).toBe('cli c\n');
  }, 300_000);

  it('runs without pnpm on the PATH, from any directory, resolving paths against it', async () => {
    const server = await startEpoch(cleanups);
    const cwd = await tempDir('epoch-caller-', cleanups);
    const env = { ...machineEnv, PATH: plainPath, HOME: cwd, EPOCH_SERVER: server.url };
    const version = await exec(process.execPath, [script, 'version'], { cwd, env });
    expect(version.stdout).toBe('epoch 0.1.0\n');

    // A relative --from-dir is the caller's, not the checkout's.
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(cwd, 'rel'));
    await writeFile(join(cwd, 'rel', 'memory-ranges'), Buffer.alloc(1000, 5));
    const push = await exec(process.execPath, [script, 'push', 'relvm', '--from-dir', 'rel'], {
      cwd,
      env,
    });
    expect(push.stdout).toMatch(/^relvm:latest@sha256:/);
    // pnpm runs root scripts in the root and passes the caller's directory as INIT_CWD.
    const viaPnpm = await exec(
      process.execPath,
      [script, 'push', 'relvm', '-t', 'v2', '--from-dir', 'rel'],
      { cwd: checkout, env: { ...env, INIT_CWD: cwd } },
    );
    expect(viaPnpm.stdout).toMatch(/^relvm:v2@sha256:/);
  }, 300_000);

  it('`pnpm -s epoch` works in a package directory, and pnpm start ends cleanly on Ctrl-C', async () => {
    const pnpm = ['-y', 'pnpm@10'];
    const env = { ...process.env, npm_config_update_notifier: 'false' };
    const inPackage = await exec('npx', [...pnpm, '-s', 'epoch', 'version'], {
      cwd: join(checkout, 'apps', 'server'),
      env,
    });
    expect(inPackage.stdout).toBe('epoch 0.1.0\n');

    // As a terminal's foreground job: its own process group, and Ctrl-C signals all of it. npx
    // itself dies of the signal (npm's way); what runs under it must end cleanly.
    const viaNpx = await ctrlC('npx', [...pnpm, 'start'], env);
    expect(viaNpx.out).toContain('"signal":"SIGINT","msg":"shutting down');
    expect(viaNpx.out).toContain('"msg":"stopped"');
    expect(viaNpx.out).not.toContain('ELIFECYCLE');
    expect(viaNpx.out).not.toContain('Unknown project config');
    const direct = await ctrlC(process.execPath, [script, 'serve'], env);
    expect(direct.code, direct.out).toBe(0);
    expect(direct.out).toContain('"msg":"stopped"');
  }, 300_000);
});
