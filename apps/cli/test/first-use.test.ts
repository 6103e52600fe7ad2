import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { RunningServer } from '@epoch/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cocoonRoot, epoch, fakeCocoon, main, startEpoch, tempDir } from './support/harness.js';

// What a new user runs into first: the messages must point at the fix, not at a symptom.
const cleanups: (() => Promise<void>)[] = [];
let server: RunningServer;

beforeAll(async () => {
  server = await startEpoch(cleanups);
});
afterAll(async () => {
  for (const c of cleanups) await c();
});

/** An environment with no cocoon on the PATH and no saved login. */
async function bareEnv(extra: NodeJS.ProcessEnv = {}): Promise<NodeJS.ProcessEnv> {
  const home = await tempDir('epoch-home-', cleanups);
  return { HOME: home, XDG_CONFIG_HOME: join(home, 'config'), EPOCH_SERVER: server.url, ...extra };
}

/** A port nothing listens on: bound once, then released. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as { port: number };
  probe.close();
  await once(probe, 'close');
  return port;
}

describe('errors that name their cause', () => {
  it('push and pull without cocoon say so and name EPOCH_COCOON_BINARY and the flags that need none', async () => {
    const env = await bareEnv({ PATH: '/nonexistent' });
    const push = await epoch(['push', 'myvm'], env);
    expect(push.code).toBe(1);
    expect(push.stderr).toContain('cocoon not found');
    expect(push.stderr).toContain('EPOCH_COCOON_BINARY');
    expect(push.stderr).toContain('--from-tar');
    expect(push.stderr).toContain('--from-dir');
    expect(push.stderr).not.toContain('empty');

    const missing = await epoch(
      ['push', 'myvm'],
      await bareEnv({ EPOCH_COCOON_BINARY: '/nonexistent/cocoon' }),
    );
    expect(missing.stderr).toContain(
      'cocoon not found (looked for EPOCH_COCOON_BINARY=/nonexistent/cocoon)',
    );

    // Something to pull first, pushed without cocoon.
    const dir = await tempDir('epoch-vmdir-', cleanups);
    await writeFile(join(dir, 'memory-ranges'), Buffer.alloc(5000, 1));
    expect((await epoch(['push', 'nococoon', '--from-dir', dir], env)).code).toBe(0);
    const pull = await epoch(['pull', 'nococoon'], env);
    expect(pull.code).toBe(1);
    expect(pull.stderr).toContain('cocoon not found');
    expect(pull.stderr).toContain('EPOCH_COCOON_BINARY');
    expect(pull.stderr).toContain('--to-tar');
    expect(pull.stderr).not.toContain('ENOENT');
  });

  it('a registry that is not running is named with EPOCH_SERVER and its address', async () => {
    const port = await closedPort();
    const set = await epoch(['ls'], await bareEnv({ EPOCH_SERVER: `http://127.0.0.1:${port}` }));
    expect(set.code).toBe(1);
    expect(set.stderr).toContain(`cannot reach the registry at http://127.0.0.1:${port}`);
    expect(set.stderr).toContain('EPOCH_SERVER');
    expect(set.stderr).toContain('connection refused');

    // Unset: the default address, and that EPOCH_SERVER is how to change it. (Whatever listens
    // on the default port here, the message is checked only when nothing does.)
    const unset = await bareEnv();
    delete unset.EPOCH_SERVER;
    const byDefault = await epoch(['ls'], unset);
    if (byDefault.code !== 0) {
      expect(byDefault.stderr).toContain('http://127.0.0.1:4300');
      expect(byDefault.stderr).toContain('EPOCH_SERVER is not set');
    }

    // A host in the reference, not EPOCH_SERVER: no advice about EPOCH_SERVER.
    const other = await epoch(['ls', `127.0.0.1:${port}/x`], await bareEnv());
    expect(other.stderr).toContain(`cannot reach the registry at http://127.0.0.1:${port}`);
    expect(other.stderr).not.toContain('EPOCH_SERVER');
  });

  it('pull --to-tar says where it wrote, not a cocoon name', async () => {
    const env = await bareEnv();
    const dir = await tempDir('epoch-vmdir-', cleanups);
    await writeFile(join(dir, 'disk.qcow2'), Buffer.alloc(3000, 2));
    expect((await epoch(['push', 'team/demo-vm', '--from-dir', dir], env)).code).toBe(0);
    const out = join(dir, 'out.tar');
    const pulled = await epoch(['pull', 'team/demo-vm', '--to-tar', out], env);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(pulled.stderr).toContain(`(snapshot) to ${out}`);
    expect(pulled.stderr).not.toContain('as demo-vm');
  });
});

describe('a push with no credentials to a registry that requires them', () => {
  it('says that none were sent and how to give them', async () => {
    const locked = await startEpoch(cleanups, {
      EPOCH_REGISTRY_TOKEN: 'static-registry-token-0123456789',
    });
    const env = await bareEnv({ EPOCH_SERVER: locked.url });
    const dir = await tempDir('epoch-vmdir-', cleanups);
    await writeFile(join(dir, 'memory-ranges'), Buffer.alloc(2000, 3));
    const push = await epoch(['push', 'vm', '--from-dir', dir], env);
    expect(push.code).toBe(1);
    expect(push.stderr).toContain('none were sent');
    expect(push.stderr).toContain('epoch login');
    expect(push.stderr).toContain('EPOCH_REGISTRY_TOKEN');

    // With a token that is refused, the registry's own answer stands.
    const wrong = await epoch(['push', 'vm', '--from-dir', dir], {
      ...env,
      EPOCH_REGISTRY_TOKEN: 'not-a-token-of-this-registry',
    });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).not.toContain('none were sent');
  });
});

describe('push --from-dir', () => {
  it('pushes every regular file as a snapshot file and round-trips through --to-tar', async () => {
    const env = await bareEnv();
    const dir = await tempDir('epoch-vmdir-', cleanups);
    const memory = Buffer.alloc(200_000, 7);
    await writeFile(join(dir, 'memory-ranges'), memory);
    await writeFile(join(dir, 'config.json'), '{"cpus":{"boot_vcpus":2}}');
    await writeFile(join(dir, 'state.json'), '{}');
    await chmod(join(dir, 'state.json'), 0o600);
    const push = await epoch(['push', 'dirvm', '-t', 'v1', '--from-dir', dir], env);
    expect(push.code, push.stderr).toBe(0);
    expect(push.stderr).toContain('3 layers (0 already there)');

    const inspect = await epoch(['inspect', 'dirvm:v1', '--json'], env);
    const report = JSON.parse(inspect.stdout.toString());
    expect(report.kind).toBe('snapshot');
    const titles = report.manifest.layers.map(
      (l: { annotations: Record<string, string> }) =>
        l.annotations['org.opencontainers.image.title'],
    );
    expect(titles).toEqual(['config.json', 'memory-ranges', 'state.json']);
    // No snapshot.json in the directory: the envelope names the snapshot.
    expect(JSON.parse(report.config.envelope)).toEqual({ config: { name: 'dirvm' }, version: 1 });
    expect(report.config.files['state.json'].mode).toBe(0o600);

    // Imported by (a stand-in for) cocoon: the same bytes.
    const root = await cocoonRoot(cleanups);
    const pulled = await epoch(['pull', 'dirvm:v1', '--name', 'restored'], {
      ...env,
      EPOCH_COCOON_BINARY: fakeCocoon,
      FAKE_COCOON_ROOT: root,
      PATH: process.env.PATH,
    });
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(
      (await readFile(join(root, 'snapshots', 'restored', 'memory-ranges'))).equals(memory),
    ).toBe(true);

    // Pushed again: every layer is already there, nothing is sent.
    const again = await epoch(['push', 'dirvm', '-t', 'v2', '--from-dir', dir], env);
    expect(again.stderr).toContain('3 layers (3 already there)');
  });

  it('keeps a snapshot.json in the directory verbatim', async () => {
    const env = await bareEnv();
    const dir = await tempDir('epoch-vmdir-', cleanups);
    const envelope =
      '{"version":1,"config":{"name":"x","cpu":4,"memory":1073741824,"future":[1]}}\n';
    await writeFile(join(dir, 'snapshot.json'), envelope);
    await writeFile(join(dir, 'memory-ranges'), Buffer.alloc(100, 1));
    expect((await epoch(['push', 'envvm', '--from-dir', dir], env)).code).toBe(0);
    const report = JSON.parse((await epoch(['inspect', 'envvm', '--json'], env)).stdout.toString());
    expect(report.config.envelope).toBe(envelope);
    expect(report.config.cpu).toBe(4);
    expect(report.manifest.layers).toHaveLength(1);
  });

  it('refuses what it cannot push as a snapshot file, by name', async () => {
    const env = await bareEnv();
    const dir = await tempDir('epoch-vmdir-', cleanups);
    await writeFile(join(dir, 'memory-ranges'), 'x');
    await mkdir(join(dir, 'sub'));
    const sub = await epoch(['push', 'badvm', '--from-dir', dir], env);
    expect(sub.code).toBe(1);
    expect(sub.stderr).toContain('sub is a directory');

    const linked = await tempDir('epoch-vmdir-', cleanups);
    await symlink('/etc/hostname', join(linked, 'link'));
    expect((await epoch(['push', 'badvm', '--from-dir', linked], env)).stderr).toContain(
      'link is a symbolic link',
    );

    const empty = await tempDir('epoch-vmdir-', cleanups);
    expect((await epoch(['push', 'badvm', '--from-dir', empty], env)).stderr).toContain(
      'no files to push',
    );
    const badJson = await tempDir('epoch-vmdir-', cleanups);
    await writeFile(join(badJson, 'snapshot.json'), '{"config":{}}');
    await writeFile(join(badJson, 'disk'), 'x');
    expect((await epoch(['push', 'badvm', '--from-dir', badJson], env)).stderr).toContain(
      'expected {"version": 1',
    );
    const both = await epoch(['push', 'badvm', '--from-dir', dir, '--from-tar', 'x.tar'], env);
    expect(both.code).toBe(64);
    // Nothing of the above became a tag.
    expect((await epoch(['ls', 'badvm'], env)).code).toBe(2);
  });

  it('documents the tar format and the directory format in push --help', async () => {
    const help = await epoch(['push', '--help'], {});
    const text = help.stdout.toString();
    expect(text).toContain('COCOON.sparse.map');
    expect(text).toContain('snapshot.json');
    expect(text).toContain('--from-dir DIR');
  });
});

describe('epoch gc --dry-run after a tag delete', () => {
  it('reports what the grace period holds back, and until when', async () => {
    const dataDir = await tempDir('epoch-gc-', cleanups);
    const s3env = join(dataDir, 's3.env');
    await writeFile(s3env, '');
    const serverEnv = { EPOCH_DATA_DIR: dataDir, EPOCH_S3_ENV_FILE: s3env };
    const own = await startEpoch(cleanups, serverEnv);
    const env = await bareEnv({ EPOCH_SERVER: own.url });
    const dir = await tempDir('epoch-vmdir-', cleanups);
    await writeFile(join(dir, 'memory-ranges'), Buffer.alloc(300_000, 9));
    expect((await epoch(['push', 'gcvm', '-t', 'v1', '--from-dir', dir], env)).code).toBe(0);
    expect((await epoch(['rm', 'gcvm:v1'], env)).code).toBe(0);

    const before = Date.now();
    const json = await epoch(['gc', '--dry-run', '--json'], { ...env, ...serverEnv });
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout.toString());
    expect(report.manifests.count).toBe(0);
    expect(report.blobs.count).toBe(0);
    expect(report.held.manifests.count).toBe(1);
    // The memory file, and the config blob.
    expect(report.held.blobs.count).toBe(2);
    expect(report.held.blobs.bytes).toBeGreaterThan(300_000);
    const until = Date.parse(report.held.until);
    // Pushed moments ago, held for the default hour.
    expect(until).toBeGreaterThan(before + 55 * 60_000);
    expect(until).toBeLessThanOrEqual(Date.now() + 60 * 60_000);
    expect(report.held.manifests.items[0]).toMatchObject({ repository: 'gcvm' });

    const text = await epoch(['gc', '--dry-run'], { ...env, ...serverEnv });
    expect(text.stdout.toString()).toContain('held back by the grace period (1h, EPOCH_GC_DELAY)');
    expect(text.stdout.toString()).toContain(`until      ${report.held.until.slice(0, 16)}`);

    // Without a grace period the same run collects it, and holds nothing back.
    const now = await epoch(['gc', '--dry-run', '--json'], {
      ...env,
      ...serverEnv,
      EPOCH_GC_DELAY: '0',
    });
    const collected = JSON.parse(now.stdout.toString());
    expect(collected.manifests.count).toBe(1);
    expect(collected.blobs.count).toBe(2);
    expect(collected.held.until).toBeNull();
  });
});

describe('epoch serve start-up and shutdown', () => {
  /** Runs `epoch serve` until it has printed `until` (or exited); returns it and its output. */
  function serve(args: string[], env: NodeJS.ProcessEnv, until?: RegExp) {
    const child = spawn(process.execPath, [main, 'serve', ...args], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const seen = new Promise<void>((resolve) => {
      const check = () => {
        if (until?.test(stdout)) resolve();
      };
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        check();
      });
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      child.on('close', () => resolve());
    });
    const closed = new Promise<number | null>((resolve) =>
      child.on('close', (code) => resolve(code)),
    );
    return { child, seen, closed, out: () => ({ stdout, stderr }) };
  }

  it('an unusable data directory (procfs) is an error, not a hang', async () => {
    const run = serve(['--addr', '127.0.0.1:0', '--data-dir', '/proc/epoch-test'], await bareEnv());
    expect(await run.closed).toBe(1);
    expect(run.out().stderr).toContain(
      'EPOCH_DATA_DIR/--data-dir "/proc/epoch-test" cannot be used',
    );
  });

  it('an address in use is the only thing said, before any warning', async () => {
    const dataDir = await tempDir('epoch-serve-', cleanups);
    const port = new URL(server.url).port;
    const run = serve(['--addr', `127.0.0.1:${port}`, '--data-dir', dataDir], await bareEnv());
    expect(await run.closed).toBe(1);
    const { stdout, stderr } = run.out();
    expect(stderr).toBe(
      `epoch serve: 127.0.0.1:${port} is already in use (another epoch serve?); choose another address with --addr or EPOCH_ADDR\n`,
    );
    expect(stdout).not.toContain('no registry token');
  });

  it('logs its shutdown and exits 0 on SIGINT and SIGTERM; probes are logged at debug', async () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const dataDir = await tempDir('epoch-serve-', cleanups);
      const run = serve(
        ['--addr', '127.0.0.1:0', '--data-dir', dataDir],
        await bareEnv(),
        /"msg":"index reconciled"/,
      );
      await run.seen;
      const url = /"url":"([^"]+)"/.exec(run.out().stdout)?.[1];
      expect(url).toBeDefined();
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect((await fetch(`${url}/v2/`)).status).toBe(200);
      run.child.kill(signal);
      expect(await run.closed).toBe(0);
      const lines = run
        .out()
        .stdout.trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { msg: string; path?: string; signal?: string });
      expect(lines.find((l) => l.msg.startsWith('shutting down'))?.signal).toBe(signal);
      expect(lines.at(-1)?.msg).toBe('stopped');
      const requests = lines.filter((l) => l.msg === 'request').map((l) => l.path);
      expect(requests).toEqual(['/v2/']);
      expect(run.out().stderr).toBe('');
    }
  });

  it('a MySQL database that does not exist is named, with how to create it [needs EPOCH_TEST_MYSQL_URL]', async (ctx) => {
    const url = process.env.EPOCH_TEST_MYSQL_URL;
    if (!url) return ctx.skip();
    const dsn = new URL(url);
    dsn.pathname = '/epoch_no_such_database';
    const run = serve(
      ['--addr', '127.0.0.1:0', '--dsn', dsn.toString()],
      await bareEnv({
        EPOCH_DATA_DIR: await tempDir('epoch-serve-', cleanups),
      }),
    );
    expect(await run.closed).toBe(1);
    const { stderr } = run.out();
    expect(stderr).toContain('"epoch_no_such_database"');
    expect(stderr).toContain('CREATE DATABASE `epoch_no_such_database`');
    expect(stderr).not.toContain('  ');
  });
});
