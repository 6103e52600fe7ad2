import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChunkedMediaTypes, CocoonMediaTypes, MediaTypes } from '@epoch/oci';
import { type DockerRegistry, startDockerRegistry } from '@epoch/test-support/docker-registry';
import { startProxy } from '@epoch/test-support/http-proxy';
import { RawClient } from '@epoch/test-support/oci-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../support/epoch-server.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * `epoch push` without `--incremental`/`--no-incremental` follows the repository's default
 * (`epoch repo set-default`, kept by the server's `/api/repository-settings/<name>`), with the
 * built CLI against a real server, a docker-registry (no `/api/`) and a failing `/api/`.
 */

const STATIC_TOKEN = 'static-registry-token-0123456789';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built `epoch` with exactly `env` (and PATH). */
function epoch(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('epoch push and the repository default format', () => {
  let t: TestServer;
  let home: string;
  let snapshot: string;
  let admin: RawClient;
  let ownerToken: string;
  /** The CLI's environment: this server, a fresh HOME, the given token. */
  const env = (token: string | undefined, server = t.url): NodeJS.ProcessEnv => ({
    HOME: home,
    XDG_CONFIG_HOME: join(home, 'config'),
    EPOCH_SERVER: server,
    ...(token ? { EPOCH_REGISTRY_TOKEN: token } : {}),
  });
  const push = (ref: string, flags: string[] = [], token: string | undefined = ownerToken) =>
    epoch(['push', ref, '--from-dir', snapshot, ...flags], env(token));
  /** The artifact type of a pushed tag's manifest, read from the registry's `/v2/`. */
  const artifactType = async (client: RawClient, repository: string, tag: string) => {
    const res = await client.fetch(`/v2/${repository}/manifests/${tag}`, {
      headers: { Accept: MediaTypes.ociManifest },
    });
    expect(res.status, `${repository}:${tag}`).toBe(200);
    const manifest = (await res.json()) as {
      artifactType?: string;
      config: { mediaType: string };
      layers: { mediaType: string }[];
    };
    return {
      artifactType: manifest.artifactType,
      config: manifest.config.mediaType,
      layers: [...new Set(manifest.layers.map((l) => l.mediaType))].sort(),
    };
  };
  const INCREMENTAL = {
    artifactType: ChunkedMediaTypes.snapshotArtifact,
    config: ChunkedMediaTypes.snapshotConfig,
    layers: [ChunkedMediaTypes.chunkIndex, ChunkedMediaTypes.chunkPack].sort(),
  };

  beforeAll(async () => {
    t = await startTestServer('filesystem', { EPOCH_REGISTRY_TOKEN: STATIC_TOKEN });
    admin = new RawClient(t.url, { Authorization: `Bearer ${await t.token(['admin'])}` });
    ownerToken = await t.token(['push'], 'team/*');
    home = await mkdtemp(join(tmpdir(), 'epoch-e2e-format-'));
    snapshot = join(home, 'vm');
    await mkdir(snapshot);
    await writeFile(join(snapshot, 'config.json'), '{"cpus":{"boot_vcpus":2}}');
    await writeFile(join(snapshot, 'memory-ranges'), randomBytes(300 * 1024));
  });
  afterAll(async () => {
    await t?.stop();
    await rm(home, { recursive: true, force: true });
  });

  it('sets the default with epoch repo, and a push with no flag follows it', async () => {
    const set = await epoch(['repo', 'set-default', 'team/vm', 'incremental'], env(ownerToken));
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/^team\/vm\tdefault format incremental \(set by test-push-/);
    const shown = await epoch(['repo', 'show', 'team/vm', '--json'], env(ownerToken));
    expect(JSON.parse(shown.stdout)).toMatchObject({
      name: 'team/vm',
      defaultFormat: 'incremental',
      writable: true,
    });

    // Set before the first push: the repository does not exist yet.
    const v1 = await push('team/vm:v1');
    expect(v1.code, v1.stderr).toBe(0);
    expect(v1.stderr).toContain(
      `pushed team/vm:v1 to ${t.url} in the incremental format (the repository's default)`,
    );
    expect(v1.stdout).toMatch(/^team\/vm:v1@sha256:[0-9a-f]{64}\n$/);
    expect(await artifactType(admin, 'team/vm', 'v1')).toEqual(INCREMENTAL);

    // A second version reuses the first one's chunks: nothing new to send.
    const v2 = await push('team/vm:v2');
    expect(v2.code, v2.stderr).toBe(0);
    expect(v2.stderr).toContain('sent 0 new packs');
  });

  it('lets --no-incremental and --incremental override the default', async () => {
    const full = await push('team/vm:full', ['--no-incremental']);
    expect(full.code, full.stderr).toBe(0);
    expect(full.stderr).toContain('in the full format (--no-incremental)');
    expect((await artifactType(admin, 'team/vm', 'full')).artifactType).toBe(
      CocoonMediaTypes.snapshotArtifact,
    );

    const plain = await push('team/plain:v1');
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stderr).toContain('in the full format (no repository default set)');
    expect((await artifactType(admin, 'team/plain', 'v1')).artifactType).toBe(
      CocoonMediaTypes.snapshotArtifact,
    );
    const forced = await push('team/plain:v2', ['--incremental']);
    expect(forced.stderr).toContain('in the incremental format (--incremental)');
    expect(await artifactType(admin, 'team/plain', 'v2')).toEqual(INCREMENTAL);

    const contradiction = await push('team/vm:x', ['--no-incremental', '--base', 'team/vm:v1']);
    expect(contradiction.code).toBe(64);
    expect(contradiction.stderr).toContain(
      '--base needs the incremental format: add --incremental',
    );
  });

  it('keeps the default through epoch reindex', async () => {
    const reindex = await epoch(['reindex'], { ...t.env, HOME: home });
    expect(reindex.code, reindex.stderr).toBe(0);
    const shown = await epoch(['repo', 'show', 'team/vm', '--json'], env(ownerToken));
    expect(JSON.parse(shown.stdout).defaultFormat).toBe('incremental');
    const v3 = await push('team/vm:v3');
    expect(v3.stderr).toContain("in the incremental format (the repository's default)");
  });

  it('refuses set-default without push rights, and an unknown format, changing nothing', async () => {
    const reader = await t.token(['pull'], 'team/*');
    const refused = await epoch(['repo', 'set-default', 'team/vm', 'full'], env(reader));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/403/);
    const unknown = await epoch(['repo', 'set-default', 'team/vm', 'zstd'], env(ownerToken));
    expect(unknown.code).toBe(64);
    expect(unknown.stderr).toContain('unknown format "zstd": use full or incremental');
    expect((await t.server.index.repositorySettings.get('team/vm')).defaultFormat).toBe(
      'incremental',
    );
  });

  it('pushes in the full format, with a warning, when the credentials may not read /api/', async () => {
    // The static registry token: every /v2/ right, no /api/ right.
    const run = await push('team/vm:static', [], STATIC_TOKEN);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('epoch: warning: cannot read the default format of team/vm from');
    expect(run.stderr).toContain('in the full format (repository default unreadable)');
    expect((await artifactType(admin, 'team/vm', 'static')).artifactType).toBe(
      CocoonMediaTypes.snapshotArtifact,
    );
  });

  it('pushes nothing when the registry’s /api/ fails', async () => {
    const proxy = await startProxy(t.url, (req, res) => {
      if (!req.url?.startsWith('/api/')) return 'pass';
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{"error":"index unavailable","code":"UNAVAILABLE"}');
      return 'handled';
    });
    try {
      const run = await epoch(
        ['push', 'team/vm:broken', '--from-dir', snapshot],
        env(ownerToken, proxy.url),
      );
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('cannot read the default format of team/vm');
      expect(run.stderr).toContain('Nothing was pushed');
      const tag = await admin.fetch('/v2/team/vm/manifests/broken', { method: 'HEAD' });
      expect(tag.status).toBe(404);
    } finally {
      await proxy.close();
    }
  });

  describe('a registry without /api/ (docker-registry)', () => {
    let registry: DockerRegistry;
    beforeAll(async () => {
      registry = await startDockerRegistry();
    });
    afterAll(async () => {
      await registry?.stop();
    });

    it('gets the full format, silently, and has no repository settings to set', async () => {
      const run = await epoch(['push', `${registry.host}/vm:v1`, '--from-dir', snapshot], {
        HOME: home,
        XDG_CONFIG_HOME: join(home, 'config'),
      });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).not.toContain('warning');
      expect(run.stderr).toContain(
        `pushed vm:v1 to ${registry.url} in the full format (no Epoch /api/ at ${registry.host})`,
      );
      expect((await artifactType(new RawClient(registry.url), 'vm', 'v1')).artifactType).toBe(
        CocoonMediaTypes.snapshotArtifact,
      );
      const set = await epoch(['repo', 'set-default', `${registry.host}/vm`, 'incremental'], {
        HOME: home,
      });
      expect(set.code).toBe(1);
      expect(set.stderr).toContain('has no Epoch control API (/api/)');
    });
  });
});
