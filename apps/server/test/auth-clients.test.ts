import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RawClient } from '@epoch/test-support/oci-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { layoutManifestDigest, writeImageLayout } from './support/oci-layout.js';
import { startTestServer, type TestServer } from './support/server.js';

const exec = promisify(execFile);

// Debian's skopeo logs in through the 401 challenge and /v2/token like docker and podman do.
describe('skopeo against a server that requires credentials', () => {
  let t: TestServer;
  let work: string;
  let host: string;
  beforeAll(async () => {
    t = await startTestServer('filesystem', { EPOCH_ANONYMOUS_PULL: 'false' });
    // An existing token ends the out-of-the-box loopback writes.
    await t.token(['admin']);
    work = await mkdtemp(join(tmpdir(), 'epoch-auth-skopeo-'));
    host = new URL(t.url).host;
    await writeImageLayout(join(work, 'src'), 'v1', 1024 * 1024);
    // The server trusts its "no tokens yet" answer for 2 s after start-up.
    await new Promise((resolve) => setTimeout(resolve, 2100));
  });
  afterAll(async () => {
    await t.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('refuses a push without credentials with 401 and a Bearer challenge', async () => {
    const push = exec('skopeo', [
      'copy',
      '--dest-tls-verify=false',
      `oci:${join(work, 'src')}:v1`,
      `docker://${host}/auth/skopeo:v1`,
    ]);
    await expect(push).rejects.toThrow(/unauthorized|authentication required|401/i);
    const challenge = await new RawClient(t.url).fetch('/v2/auth/skopeo/blobs/uploads/', {
      method: 'POST',
    });
    expect(challenge.status).toBe(401);
    expect(challenge.headers.get('www-authenticate')).toBe(
      `Bearer realm="${t.url}/v2/token",service="epoch",scope="repository:auth/skopeo:pull,push"`,
    );
    expect((await new RawClient(t.url).fetch('/v2/auth/skopeo/tags/list')).status).toBe(401);
  });

  it('pushes with --dest-creds _token:<token> and pulls back with --src-creds', async () => {
    const token = await t.token(['push'], 'auth/*');
    await exec('skopeo', [
      'copy',
      '--preserve-digests',
      '--dest-tls-verify=false',
      '--dest-creds',
      `_token:${token}`,
      `oci:${join(work, 'src')}:v1`,
      `docker://${host}/auth/skopeo:v1`,
    ]);
    const pullOnly = await t.token(['pull'], 'auth/skopeo');
    const dst = join(work, 'dst');
    await exec('skopeo', [
      'copy',
      '--preserve-digests',
      '--src-tls-verify=false',
      '--src-creds',
      `_token:${pullOnly}`,
      `docker://${host}/auth/skopeo:v1`,
      `oci:${dst}:v1`,
    ]);
    expect(await layoutManifestDigest(dst, 'v1')).toBe(
      await layoutManifestDigest(join(work, 'src'), 'v1'),
    );
    // A pull-only token cannot push.
    await expect(
      exec('skopeo', [
        'copy',
        '--dest-tls-verify=false',
        '--dest-creds',
        `_token:${pullOnly}`,
        `oci:${join(work, 'src')}:v1`,
        `docker://${host}/auth/skopeo:v2`,
      ]),
    ).rejects.toThrow();
  });
});

describe('skopeo anonymous pull (anonymous token)', () => {
  let t: TestServer;
  let work: string;
  beforeAll(async () => {
    t = await startTestServer('filesystem', {
      EPOCH_REGISTRY_TOKEN: 'static-registry-token-0123456789',
    });
    work = await mkdtemp(join(tmpdir(), 'epoch-anon-skopeo-'));
  });
  afterAll(async () => {
    await t.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('pulls without credentials through the anonymous token when anonymous pull is on', async () => {
    const host = new URL(t.url).host;
    await writeImageLayout(join(work, 'src'), 'v1', 4096);
    await exec('skopeo', [
      'copy',
      '--dest-tls-verify=false',
      '--dest-creds',
      '_token:static-registry-token-0123456789',
      `oci:${join(work, 'src')}:v1`,
      `docker://${host}/public/app:v1`,
    ]);
    const { stdout } = await exec('skopeo', [
      'inspect',
      '--raw',
      '--tls-verify=false',
      `docker://${host}/public/app:v1`,
    ]);
    expect(JSON.parse(stdout)).toHaveProperty('layers');
  });
});
