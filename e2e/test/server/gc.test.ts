import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { digestOf } from '@epoch/oci';
import { Layout } from '@epoch/registry';
import type { GcReport } from '@epoch/server';
import { freshMysqlDatabase, indexKinds } from '@epoch/test-support/mysql';
import { RawClient } from '@epoch/test-support/oci-client';
import { backends } from '@epoch/test-support/test-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../support/epoch-server.js';
import { startTestServer, type TestServer } from '../support/server.js';

// `epoch gc` next to a running server; the collector's own cases are in apps/server/test/gc.test.ts.
const exec = promisify(execFile);
const cases = backends.flatMap((backend) => indexKinds.map((kind) => [backend, kind] as const));

describe.each(cases)('garbage collection on %s with %s', (backend, kind) => {
  let t: TestServer;
  let db: Awaited<ReturnType<typeof freshMysqlDatabase>> | undefined;
  beforeAll(async () => {
    db = kind === 'mysql' ? await freshMysqlDatabase() : undefined;
    t = await startTestServer(backend, { EPOCH_GC_DELAY: '0', ...(db && { EPOCH_DSN: db.dsn }) });
  }, 60_000);
  afterAll(async () => {
    await t.stop();
    await db?.drop();
  });
  const exists = async (key: string) => (await t.store.stat(key)) !== undefined;

  it('epoch gc --dry-run --json reports, epoch gc --json deletes, next to the running server', async () => {
    const api = new RawClient(t.url, { Authorization: `Bearer ${await t.token()}` });
    const repo = 'cli/app';
    const img = await api.pushImage(repo, 'v1', { layers: ['cli-layer'] });
    const deleted = await api.fetch(`/v2/${repo}/manifests/${img.digest}`, { method: 'DELETE' });
    expect(deleted.status).toBe(202);
    await new Promise((r) => setTimeout(r, 5)); // the grace period is 0: be after the delete
    const env = { ...process.env, ...t.env, EPOCH_GC_DELAY: '0' };
    const dry = await exec(process.execPath, [cli, 'gc', '--dry-run', '--json'], { env });
    const dryReport = JSON.parse(dry.stdout) as GcReport;
    expect(dryReport.dryRun).toBe(true);
    expect(dryReport.blobs.items.map((b) => b.digest)).toContain(digestOf('cli-layer'));
    expect(await exists(Layout.blob(digestOf('cli-layer')))).toBe(true);
    const real = await exec(process.execPath, [cli, 'gc', '--json'], { env });
    expect((JSON.parse(real.stdout) as GcReport).blobs.items.map((b) => b.digest)).toContain(
      digestOf('cli-layer'),
    );
    expect(await exists(Layout.blob(digestOf('cli-layer')))).toBe(false);
    const text = await exec(process.execPath, [cli, 'gc', '--dry-run'], { env });
    expect(text.stdout).toMatch(/would delete:[\s\S]*reclaimed/);
  });
});
