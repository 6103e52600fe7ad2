import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { openStore } from '@epoch/store';
import { afterEach, describe, expect, it } from 'vitest';
import { freshMysqlDatabase, indexKinds } from './support/mysql.js';
import { RawClient } from './support/oci-client.js';

const cli = fileURLToPath(new URL('../../cli/dist/main.js', import.meta.url));

/** Starts `epoch serve` in its own process and resolves with its URL from the "listening" log. */
async function serve(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [cli, 'serve'], {
    env: { ...process.env, ...env, EPOCH_ADDR: '127.0.0.1:0', EPOCH_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // Keep reading stdout for the whole run, so the child never blocks on a full pipe.
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const url = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      const entry = JSON.parse(line) as { msg?: string; url?: string };
      if (entry.msg === 'listening' && entry.url) resolve(entry.url);
    });
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before listening`)));
  });
  return { child, url };
}

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
      expect((await index.listTagNames('shared/app')).items.sort()).toEqual(expected.sort());
      const repos = (await index.listRepositoryNames()).items;
      expect(repos).toHaveLength(1 + 24);
      expect((await index.stats()).tagCount).toBe(48);
    } finally {
      await index.close();
    }
  });
});
