import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MediaTypes } from '@epoch/oci';
import { openStore, type Store } from '@epoch/store';
import { freshMysqlDatabase, indexKinds } from '@epoch/test-support/mysql';
import { RawClient } from '@epoch/test-support/oci-client';
import { backends } from '@epoch/test-support/test-server';
import { createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../support/epoch-server.js';
import { startTestServer, type TestServer } from '../support/server.js';

/** Everything a reindex must restore (ids and times aside: storage does not keep them exactly). */
async function indexState(index: Store) {
  const repos = (await index.reads.listRepositories()).items.map(
    ({ id, createdAt, updatedAt, ...r }) => r,
  );
  const detail: Record<string, unknown> = {};
  for (const repo of repos) {
    const tags = (await index.reads.listTags(repo.name)).items.sort((a, b) =>
      a.name < b.name ? -1 : 1,
    );
    detail[repo.name] = await Promise.all(
      tags.map(async (tag) => {
        const full = await index.reads.getTag(repo.name, tag.name);
        if (full === undefined) throw new Error(`tag ${tag.name} listed but not found`);
        const { id, pushedAt, manifest, ...rest } = full;
        return {
          ...rest,
          manifest: Buffer.from(manifest).toString('utf8'),
          referrers: await index.reads.listReferrers(repo.name, tag.digest),
        };
      }),
    );
  }
  return { repos, detail, stats: await index.reads.stats() };
}

const cases = backends.flatMap((backend) => indexKinds.map((index) => ({ backend, index })));

describe.each(cases)(
  'epoch reindex on $backend with a $index index',
  ({ backend, index: kind }) => {
    let t: TestServer;
    let mysql: Awaited<ReturnType<typeof freshMysqlDatabase>> | undefined;
    beforeAll(async () => {
      mysql = kind === 'mysql' ? await freshMysqlDatabase() : undefined;
      t = await startTestServer(backend, mysql ? { EPOCH_DSN: mysql.dsn } : {});
    });
    afterAll(async () => {
      await t.stop();
      await mysql?.drop();
    });

    it('restores every repository, tag, size and referrer after the index is deleted', async () => {
      const api = new RawClient(t.url);
      const v1 = await api.pushImage('team/app', 'v1', { layers: ['a', 'shared'] });
      await api.pushImage('team/app', 'v2', { layers: ['b', 'shared'] });
      await api.pushImage('other', 'latest', { layers: ['shared'] });
      await api.pushImage('team/app', 'sig', {
        extra: {
          artifactType: 'application/example',
          subject: { mediaType: MediaTypes.ociManifest, digest: v1.digest, size: v1.bytes.length },
        },
      });
      const amd = await api.pushImage('multi', 'amd', { layers: ['amd64'] });
      const arm = await api.pushImage('multi', 'arm', { layers: ['arm64', 'a'] });
      const index = JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.ociIndex,
        manifests: [
          {
            mediaType: MediaTypes.ociManifest,
            digest: amd.digest,
            size: amd.bytes.length,
            platform: { architecture: 'amd64', os: 'linux' },
          },
          {
            mediaType: MediaTypes.ociManifest,
            digest: arm.digest,
            size: arm.bytes.length,
            platform: { architecture: 'arm64', os: 'linux' },
          },
        ],
      });
      const put = await api.fetch('/v2/multi/manifests/latest', {
        method: 'PUT',
        headers: { 'Content-Type': MediaTypes.ociIndex },
        body: index,
      });
      expect(put.status).toBe(201);
      // A blob pushed but referenced by no manifest still counts in the stored bytes.
      await api.pushBlob('team/app', 'loose blob');

      const before = await indexState(t.server.index);
      expect(before.stats.repositoryCount).toBe(3);
      expect((before.detail['team/app'] as { referrers: unknown[] }[])[1]?.referrers).toHaveLength(
        1,
      );

      await t.halt();
      if (mysql) {
        // Kill the index: drop the whole database and start from an empty one.
        await mysql.drop();
        const url = new URL(mysql.dsn);
        const admin = await createConnection({
          uri: `${url.protocol}//${url.username}${url.password ? `:${url.password}` : ''}@${url.host}`,
        });
        await admin.query(`CREATE DATABASE ${url.pathname.slice(1)}`);
        await admin.end();
      } else {
        for (const suffix of ['', '-wal', '-shm'])
          await rm(join(t.dataDir, `epoch.db${suffix}`), { force: true });
      }

      const run = await promisify(execFile)(process.execPath, [cli, 'reindex', '--json'], {
        env: { ...process.env, ...t.env },
      });
      const report = JSON.parse(run.stdout) as {
        repositories: { added: number };
        errors: unknown[];
      };
      expect(report.repositories.added).toBe(3);
      expect(report.errors).toEqual([]);

      const rebuilt = await openStore(
        mysql ? { dsn: mysql.dsn } : { sqliteFile: join(t.dataDir, 'epoch.db') },
      );
      try {
        expect(await indexState(rebuilt)).toEqual(before);
      } finally {
        await rebuilt.close();
      }

      // A second run finds nothing to fix.
      const again = await promisify(execFile)(process.execPath, [cli, 'reindex', '--json'], {
        env: { ...process.env, ...t.env },
      });
      expect(JSON.parse(again.stdout)).toEqual({
        repositories: { added: 0, removed: 0 },
        tags: { added: 0, updated: 0, removed: 0 },
        manifests: { added: 0, updated: 0, removed: 0 },
        links: { added: 0, removed: 0 },
        blobs: { added: 0, updated: 0 },
        aggregates: 0,
        vanished: 0,
        errors: [],
      });
    });
  },
);
