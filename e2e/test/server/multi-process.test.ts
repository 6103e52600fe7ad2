import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '@epoch/store';
import { freshMysqlDatabase, indexKinds } from '@epoch/test-support/mysql';
import { RawClient } from '@epoch/test-support/oci-client';
import { afterEach, describe, expect, it } from 'vitest';
import { serveProcess as serve } from '../support/epoch-server.js';

const databases: { name: string; dsn: () => Promise<{ dsn?: string; drop(): Promise<void> }> }[] =
  indexKinds.map((name) => ({
    name,
    dsn: name === 'mysql' ? freshMysqlDatabase : async () => ({ drop: async () => {} }),
  }));

describe.each(databases)('two server processes sharing storage and a $name index', ({ dsn }) => {
  const children: ChildProcess[] = [];
  let cleanup: () => Promise<void> = async () => {};
  afterEach(async () => {
    for (const child of children.splice(0)) {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
    }
    await cleanup();
  });

  it('loses no tag or repository when both take pushes at once', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'epoch-mp-'));
    await writeFile(join(dataDir, 's3.env'), '');
    const db = await dsn();
    cleanup = async () => {
      await db.drop();
      await rm(dataDir, { recursive: true, force: true });
    };
    const env = {
      EPOCH_DATA_DIR: dataDir,
      EPOCH_S3_ENV_FILE: join(dataDir, 's3.env'),
      ...(db.dsn ? { EPOCH_DSN: db.dsn } : {}),
    };
    const servers = [await serve(env), await serve(env)];
    children.push(...servers.map((s) => s.child));
    const clients = servers.map((s) => new RawClient(s.url));

    // 2 × 12 pushes at once: one shared repository and one new repository per push.
    await Promise.all(
      clients.flatMap((api, s) =>
        Array.from({ length: 12 }, async (_, i) => {
          await api.pushImage('shared/app', `s${s}-t${i}`, { layers: [`layer-${s}-${i}`] });
          await api.pushImage(`own/s${s}-r${i}`, 'latest');
        }),
      ),
    );

    const expected = clients.flatMap((_, s) => Array.from({ length: 12 }, (_, i) => `s${s}-t${i}`));
    for (const api of clients) {
      const tags = (await (await api.fetch('/v2/shared/app/tags/list')).json()) as {
        tags: string[];
      };
      expect(tags.tags.sort()).toEqual(expected.sort());
    }
    const index = await openStore(
      db.dsn ? { dsn: db.dsn } : { sqliteFile: join(dataDir, 'epoch.db') },
    );
    try {
      expect((await index.reads.listTagNames('shared/app')).items.sort()).toEqual(expected.sort());
      const repos = (await index.reads.listRepositoryNames()).items;
      expect(repos).toHaveLength(1 + 24);
      expect((await index.reads.stats()).tagCount).toBe(48);
    } finally {
      await index.close();
    }
  });
});
