import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freshMysqlDatabase, indexKinds } from '@epoch/test-support/mysql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { layoutManifestDigest, writeImageLayout } from './support/oci-layout.js';
import {
  type AuthMode,
  type Backend,
  backends,
  startTestServer,
  type TestServer,
} from './support/server.js';

const exec = promisify(execFile);

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk);
  return `sha256:${hash.digest('hex')}`;
}

const cases: { backend: Backend; index: 'sqlite' | 'mysql'; auth: AuthMode }[] = [
  ...backends.map((backend) => ({ backend, index: 'sqlite' as const, auth: 'anonymous' as const })),
  // With a token, skopeo goes through the challenge and the token endpoint, as in production.
  ...backends
    .filter((backend) => backend !== 's3')
    .map((backend) => ({ backend, index: 'sqlite' as const, auth: 'token' as const })),
  // fauxqs as published, without the optional S3 features (ListParts, UploadPartCopy,
  // If-None-Match, byte-ordered listings, …): the first PATCH of this push used to answer 500.
  { backend: 's3-plain', index: 'sqlite', auth: 'anonymous' },
  ...indexKinds
    .filter((k) => k === 'mysql')
    .map((index) => ({ backend: 'filesystem' as const, index, auth: 'anonymous' as const })),
];

// Debian's skopeo is the real OCI client here; .ci/run installs it.
describe.each(cases)(
  'skopeo round trip on $backend with a $index index, $auth',
  ({ backend, index, auth }) => {
    let t: TestServer;
    let work: string;
    /** skopeo's credentials flag values and the matching header for plain requests. */
    let creds: string | undefined;
    let mysql: Awaited<ReturnType<typeof freshMysqlDatabase>> | undefined;

    beforeAll(async () => {
      mysql = index === 'mysql' ? await freshMysqlDatabase() : undefined;
      t = await startTestServer(backend, mysql ? { EPOCH_DSN: mysql.dsn } : {});
      work = await mkdtemp(join(tmpdir(), 'epoch-skopeo-'));
      creds = auth === 'token' ? `_token:${await t.token(['pull', 'push'], 'e2e/*')}` : undefined;
    });
    afterAll(async () => {
      await t.stop();
      await mysql?.drop();
      await rm(work, { recursive: true, force: true });
    });

    it('pushes an OCI layout with a 64 MiB layer and pulls it back with digests preserved', async () => {
      const src = join(work, 'src');
      const { manifestDigest, blobs } = await writeImageLayout(src, 'v1', 64 * 1024 * 1024);
      const host = new URL(t.url).host;

      await exec('skopeo', [
        'copy',
        '--preserve-digests',
        '--dest-tls-verify=false',
        ...(creds ? ['--dest-creds', creds] : []),
        `oci:${src}:v1`,
        `docker://${host}/e2e/skopeo:v1`,
      ]);

      // The push is visible at once.
      const authorization: Record<string, string> = creds
        ? { Authorization: `Basic ${Buffer.from(creds).toString('base64')}` }
        : {};
      const listed = await fetch(`${t.url}/v2/e2e/skopeo/tags/list`, { headers: authorization });
      const tags = (await listed.json()) as {
        tags: string[];
      };
      expect(tags.tags).toEqual(['v1']);
      const { stdout: raw } = await exec('skopeo', [
        'inspect',
        '--raw',
        '--tls-verify=false',
        ...(creds ? ['--creds', creds] : []),
        `docker://${host}/e2e/skopeo:v1`,
      ]);
      expect(`sha256:${createHash('sha256').update(raw).digest('hex')}`).toBe(manifestDigest);

      const dst = join(work, 'dst');
      await exec('skopeo', [
        'copy',
        '--preserve-digests',
        '--src-tls-verify=false',
        ...(creds ? ['--src-creds', creds] : []),
        `docker://${host}/e2e/skopeo:v1`,
        `oci:${dst}:v1`,
      ]);
      expect(await layoutManifestDigest(dst, 'v1')).toBe(manifestDigest);
      for (const blob of blobs) {
        const path = join(dst, 'blobs', 'sha256', blob.digest.slice('sha256:'.length));
        expect(await sha256File(path)).toBe(blob.digest);
      }
    });
  },
);
