import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { DEPLOY, dockerfileFinalStage, unitDirectives } from '@epoch/test-support/deploy-files';
import { freePort, hasNginx, type RunningNginx, startNginx } from '@epoch/test-support/nginx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { SERVER_ENV_VARS } from '../src/config.js';
import { startTestServer, type TestServer } from './support/server.js';

const exec = promisify(execFile);
const known = new Set<string>(SERVER_ENV_VARS);
const hasCommand = (name: string) =>
  ['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((dir) => existsSync(join(dir, name)));

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

describe('systemd unit', () => {
  it('sets only variables the server reads, with the cache directory and hardening', async () => {
    const names = (await unitDirectives('Environment')).map((e) => e.split('=')[0]);
    const example = (await readFile(join(DEPLOY, 'systemd/epoch.env.example'), 'utf8'))
      .split('\n')
      .map((l) => l.replace(/^#\s*/, ''))
      .filter((l) => /^[A-Z_]+=/.test(l))
      .map((l) => l.split('=')[0]);
    for (const name of [...names, ...example]) expect(known, name).toContain(name);
    expect(await unitDirectives('CacheDirectory')).toEqual(['epoch']);
    expect(await unitDirectives('EnvironmentFile')).toEqual(['-/etc/epoch/epoch.env']);
    for (const hardening of ['NoNewPrivileges', 'ProtectSystem', 'PrivateTmp', 'DynamicUser']) {
      expect((await unitDirectives(hardening)).length, hardening).toBe(1);
    }
  });

  it.runIf(hasCommand('systemd-analyze'))('systemd-analyze [needs systemd-analyze]', async () => {
    const { stdout, stderr } = await exec('systemd-analyze', [
      'verify',
      join(DEPLOY, 'systemd/epoch.service'),
    ]).catch((err: { stdout: string; stderr: string }) => err);
    // The unit file itself must be clean; complaints about this container having no running
    // systemd (no D-Bus, no /proc/1 systemd) are not about the file.
    const problems = `${stdout}\n${stderr}`
      .split('\n')
      .filter((l) => l.includes('epoch.service'))
      .filter((l) => !/Failed to (connect|load).*bus|System has not been booted/i.test(l));
    expect(problems).toEqual([]);
  });
});

describe('Dockerfile', () => {
  it('runs as a non-root user with a /healthz HEALTHCHECK and only production dependencies', async () => {
    const stage = await dockerfileFinalStage();
    expect(stage).toMatch(/^USER node$/m);
    expect(stage).toMatch(/HEALTHCHECK .*\/healthz/);
    expect(stage).toMatch(/^EXPOSE 4300$/m);
    const text = await readFile(join(DEPLOY, 'Dockerfile'), 'utf8');
    expect(text).toContain('deploy --prod');
    expect(text).toMatch(/apps\/web\/dist/);
  });
});

describe('docker-compose.yaml', () => {
  it('wires Epoch to MySQL and MinIO with variables the server reads and creates the bucket', async () => {
    const compose = parse(await readFile(join(DEPLOY, 'docker-compose.yaml'), 'utf8')) as {
      services: Record<
        string,
        {
          environment?: Record<string, string>;
          ports?: string[];
          healthcheck?: { test: string[] };
          entrypoint?: string[];
          image?: string;
        }
      >;
    };
    const epoch = compose.services.epoch;
    const env = epoch?.environment ?? {};
    for (const name of Object.keys(env)) expect(known, name).toContain(name);
    expect(env.EPOCH_ADDR).toBe(':4300');
    expect(epoch?.ports).toContain('4300:4300');
    expect(epoch?.healthcheck?.test.join(' ')).toMatch(/\/readyz/);
    expect(new URL(env.EPOCH_DSN ?? '').hostname).toBe('mysql');
    expect(new URL(env.EPOCH_S3_ENDPOINT ?? '').hostname).toBe('minio');
    expect(compose.services.mysql?.image).toMatch(/^mysql:8/);
    expect(compose.services['minio-init']?.entrypoint?.join(' ')).toContain(
      `local/${env.EPOCH_S3_BUCKET}`,
    );
  });
});

// biome-ignore lint/suspicious/noExplicitAny: the test walks untyped YAML documents
type Yaml = Record<string, any>;

describe('Kubernetes manifest', () => {
  it('probes /readyz and /healthz on the port the server listens on, with real-disk spool and two replicas', async () => {
    const docs = parseAllDocuments(
      await readFile(join(DEPLOY, 'kubernetes/epoch.yaml'), 'utf8'),
    ).map((d) => d.toJS() as Yaml);
    const byKind = (kind: string) => docs.find((d) => d.kind === kind) ?? {};
    const config = byKind('ConfigMap').data as Record<string, string>;
    const secret = byKind('Secret').stringData as Record<string, string>;
    for (const name of [...Object.keys(config), ...Object.keys(secret)])
      expect(known, name).toContain(name);
    const deployment = byKind('Deployment');
    expect(deployment.spec.replicas).toBe(2);
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0];
    const port = container.ports.find((p: { name: string }) => p.name === 'http').containerPort;
    expect(config.EPOCH_ADDR).toBe(`:${port}`);
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container.resources.requests).toHaveProperty('memory');
    const mount = container.volumeMounts.find(
      (m: { mountPath: string }) => m.mountPath === config.EPOCH_DATA_DIR,
    );
    const volume = pod.volumes.find((v: { name: string }) => v.name === mount.name);
    expect(volume.emptyDir).toBeDefined();
    expect(volume.emptyDir.medium).toBeUndefined();
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(byKind('Service').spec.ports[0].targetPort).toBe('http');
  });
});

describe.runIf(hasNginx)('nginx vhost [needs nginx]', () => {
  let t: TestServer;
  let nginx: RunningNginx;
  let child: ChildProcess | undefined;
  let proxy: string;
  let auth: Record<string, string>;

  beforeAll(async () => {
    t = await startTestServer('filesystem');
    // Through a proxy no client is local (it forwards X-Forwarded-For): pushes need a token.
    auth = { Authorization: `Bearer ${await t.token(['push'])}` };
    nginx = await startNginx([new URL(t.url).host], { workers: 1, start: false });
    proxy = nginx.url;
  });
  afterAll(async () => {
    if (child) await stop(child);
    await nginx.stop();
    await t.stop();
  });

  it('passes nginx -t', async () => {
    const { stderr } = await exec('nginx', ['-t', ...nginx.args]);
    expect(stderr).toMatch(/test is successful/);
  });

  it('streams a 1 GiB upload through to Epoch, digest verified', async () => {
    child = spawn('nginx', nginx.args, { stdio: 'ignore' });
    await expect
      .poll(async () => (await fetch(`${proxy}/healthz`).catch(() => undefined))?.status, {
        timeout: 10_000,
      })
      .toBe(200);
    const size = 1024 ** 3;
    const chunkSize = 1 << 20;
    // A fresh buffer per chunk: a written chunk may still be queued when the next is made.
    const body = () =>
      Readable.from(
        (function* () {
          for (let i = 0; i < size / chunkSize; i++) {
            const chunk = Buffer.alloc(chunkSize);
            chunk.writeUInt32BE(i, 0);
            yield chunk;
          }
        })(),
      );
    const hash = createHash('sha256');
    for await (const c of body()) hash.update(c as Buffer);
    const digest = `sha256:${hash.digest('hex')}`;
    const { status, text } = await new Promise<{ status: number; text: string }>(
      (resolve, reject) => {
        const req = request(
          `${proxy}/v2/big/blob/blobs/uploads/?digest=${digest}`,
          {
            method: 'POST',
            headers: {
              ...auth,
              'Content-Length': String(size),
              'Content-Type': 'application/octet-stream',
            },
          },
          async (res) => {
            let text = '';
            for await (const c of res) text += c;
            resolve({ status: res.statusCode ?? 0, text });
          },
        );
        req.on('error', reject);
        pipeline(body(), req).catch(reject);
      },
    );
    expect(status, text).toBe(201);
    const head = await fetch(`${proxy}/v2/big/blob/blobs/${digest}`, {
      method: 'HEAD',
      headers: auth,
    });
    expect(head.headers.get('content-length')).toBe(String(size));
  }, 300_000);

  it('answers a JSON 503 with Retry-After when no replica is reachable, in both error formats', async () => {
    // Nothing listens on this port: nginx's own 502 must not reach the client as HTML.
    const dead = await startNginx([`127.0.0.1:${await freePort()}`], { workers: 1, start: false });
    const deadChild = spawn('nginx', dead.args, { stdio: 'ignore' });
    try {
      await expect
        .poll(async () => (await fetch(`${dead.url}/healthz`).catch(() => undefined))?.status, {
          timeout: 10_000,
        })
        .toBe(503);
      for (const path of ['/v2/a/b/tags/list', '/api/repositories']) {
        const r = await fetch(`${dead.url}${path}`);
        expect(r.status, path).toBe(503);
        expect(r.headers.get('retry-after'), path).toBe('5');
        expect(r.headers.get('content-type'), path).toMatch(/^application\/json/);
        const body = (await r.json()) as { errors: { code: string }[]; code: string };
        expect(body.errors[0]?.code).toBe('UNAVAILABLE');
        expect(body.code).toBe('UNAVAILABLE');
      }
      const put = await fetch(`${dead.url}/v2/a/b/manifests/x`, { method: 'PUT', body: '{}' });
      expect(put.status).toBe(503);
    } finally {
      await stop(deadChild);
      await dead.stop();
    }
  });
});
