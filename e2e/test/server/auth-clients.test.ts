import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type RunningServer, startServer } from '@epoch/server';
import { RawClient } from '@epoch/test-support/oci-client';
import { afterAll, describe, expect, it } from 'vitest';
import { serveProcess } from '../support/epoch-server.js';

// The rest of this file's suites (skopeo against a server) are in apps/server/test/auth-clients.test.ts.
describe('revocation across server processes', () => {
  const servers: RunningServer[] = [];
  let child: ChildProcess | undefined;
  let dataDir: string;
  afterAll(async () => {
    for (const s of servers) await s.close(1000);
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    await rm(dataDir, { recursive: true, force: true });
  });

  it('stops a revoked token on the other process within 5 s', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'epoch-revoke-'));
    const env = {
      EPOCH_ADDR: '127.0.0.1:0',
      EPOCH_DATA_DIR: dataDir,
      EPOCH_LOG_LEVEL: 'silent',
      EPOCH_S3_ENV_FILE: join(dataDir, 'none.env'),
    };
    await writeFile(env.EPOCH_S3_ENV_FILE, '');
    // A in this process, B a separate `epoch serve` process on the same data dir and index.
    const a = await startServer(loadConfig(env), { env });
    servers.push(a);
    const spawned = await serveProcess(env);
    child = spawned.child;
    const b = { url: spawned.url };
    const { token: adminRow, plaintext: admin } = await a.index.tokens.create({
      name: 'admin',
      createdBy: 'test',
      scopes: ['admin'],
    });
    const { token, plaintext } = await a.index.tokens.create({
      name: 'ci',
      createdBy: 'test',
      scopes: ['push'],
    });
    expect(adminRow.id).not.toBe(token.id);
    const onB = new RawClient(b.url, { Authorization: `Bearer ${plaintext}` });
    expect((await onB.fetch('/v2/')).status).toBe(200);
    // A registry JWT from B, too: it must die with its token.
    const jwt = (await (
      await new RawClient(b.url).fetch('/v2/token?service=epoch&scope=repository:x/y:pull', {
        headers: {
          Authorization: `Basic ${Buffer.from(`_token:${plaintext}`).toString('base64')}`,
        },
      })
    ).json()) as { token: string };
    const jwtOnB = new RawClient(b.url, { Authorization: `Bearer ${jwt.token}` });
    expect((await jwtOnB.fetch('/v2/x/y/tags/list')).status).toBe(404);

    const revoke = await new RawClient(a.url, { Authorization: `Bearer ${admin}` }).fetch(
      `/api/tokens/${token.id}`,
      {
        method: 'DELETE',
      },
    );
    expect(revoke.status).toBe(200);
    const revokedAt = Date.now();
    await expect
      .poll(async () => (await onB.fetch('/v2/')).status, { timeout: 5000, interval: 100 })
      .toBe(401);
    await expect
      .poll(async () => (await jwtOnB.fetch('/v2/x/y/tags/list')).status, {
        timeout: 5000,
        interval: 100,
      })
      .toBe(401);
    expect(Date.now() - revokedAt).toBeLessThan(5000);
  });
});
