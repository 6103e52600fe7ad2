import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CocoonMediaTypes, digestOf, MediaTypes } from '@epoch/oci';
import { hashToken } from '@epoch/store';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultWebDir } from '../src/web/static.js';
import { RawClient } from './support/oci-client.js';
import { writeImageLayout } from './support/oci-layout.js';
import { startTestServer, type TestServer } from './support/server.js';

const exec = promisify(execFile);

// Debian's chromium (.ci/run installs it), driven by playwright-core: no browser download.
const CHROMIUM = ['/usr/lib/chromium/chromium', '/usr/bin/chromium'].find((p) => existsSync(p));
const XSS = '<script>alert(1)</script>';

describe.skipIf(CHROMIUM === undefined)('the dashboard in Chromium against a real server', () => {
  let t: TestServer;
  let admin: string;
  let api: RawClient;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  let shots: string;
  let work: string;
  const dialogs: string[] = [];
  const cspViolations: string[] = [];
  const pageErrors: string[] = [];
  const digests: Record<string, string> = {};

  const nav = {
    getByRole: (role: 'link', o: { name: string }) =>
      page.getByRole('navigation', { name: 'Main' }).getByRole(role, o),
  };
  const shot = async (name: string) => {
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  };

  beforeAll(async () => {
    const web = defaultWebDir();
    if (!web || !existsSync(join(web, 'index.html'))) {
      throw new Error('apps/web is not built: run pnpm build first');
    }
    t = await startTestServer('filesystem');
    admin = await t.token(['admin']);
    api = new RawClient(t.url, { Authorization: `Bearer ${admin}` });
    // The server learns within seconds that a token now exists (which ends anonymous loopback
    // writes); wait for that so every push below, skopeo's included, is made with credentials.
    for (let i = 0; ; i++) {
      const probe = await new RawClient(t.url).fetch('/v2/probe/blobs/uploads/', {
        method: 'POST',
      });
      if (probe.status === 401) break;
      if (i > 60)
        throw new Error('anonymous loopback writes still open 15 s after the first token');
      await new Promise((r) => setTimeout(r, 250));
    }
    work = await mkdtemp(join(tmpdir(), 'epoch-web-e2e-'));
    shots = await mkdtemp(join(tmpdir(), 'epoch-web-screenshots-'));
    console.log(`dashboard screenshots: ${shots}`);
    await pushFixtures(t, api, admin, work, digests);
    // Token names are checked by the API, but the index takes any text: it must still render as text.
    await t.server.index.createToken({ name: XSS, createdBy: XSS, scopes: ['pull'] });

    profile = await mkdtemp(join(tmpdir(), 'epoch-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM as string,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1280, height: 860 },
    });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: t.url });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('dialog', async (d) => {
      dialogs.push(d.message());
      await d.dismiss();
    });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      if (/Content.Security.Policy/i.test(msg.text())) cspViolations.push(msg.text());
    });
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    await t?.stop();
    for (const dir of [profile, work]) if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('serves the app with a strict CSP and first renders the sign-in page', async () => {
    const started = Date.now();
    const res = await page.goto(`${t.url}/`);
    await page.getByRole('heading', { name: 'Sign in to Epoch' }).waitFor();
    const firstRender = Date.now() - started;
    // Browser-side expressions are strings: this package's types have no DOM.
    const timing = (await page.evaluate(`({
      domContentLoaded: Math.round(performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd),
      fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime,
    })`)) as { domContentLoaded: number; fcp?: number };
    console.log(
      `first render of /: ${firstRender} ms to the sign-in form (DOMContentLoaded ${timing.domContentLoaded} ms, first contentful paint ${Math.round(timing.fcp ?? -1)} ms)`,
    );
    const csp = res?.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/unsafe-(inline|eval)/);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res?.headers()['x-content-type-options']).toBe('nosniff');
    await shot('01-sign-in');
  });

  it('refuses a wrong token, then signs in with an admin token', async () => {
    await page.getByLabel('API token').fill('not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    await page.getByLabel('API token').fill(admin);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await expect.poll(() => page.locator('.stat').first().textContent()).toContain('Repositories');
    await page.locator('.chart.bars rect').first().waitFor();
    await page.getByText('push', { exact: true }).first().waitFor();
    await shot('02-dashboard');
    await page.emulateMedia({ colorScheme: 'dark' });
    await shot('02-dashboard-dark');
    await page.emulateMedia({ colorScheme: 'light' });
  });

  it('lists the repositories with kinds and finds one by search', async () => {
    await nav.getByRole('link', { name: 'Repositories' }).click();
    const table = page.locator('table');
    for (const name of ['vm/live', 'os/win11', 'library/alpine', 'library/busybox', 'e2e/skopeo']) {
      await table.getByRole('link', { name, exact: true }).waitFor();
    }
    for (const kind of ['Snapshot', 'Cloud image', 'Container image', 'Image index']) {
      await expect.poll(() => table.getByText(kind, { exact: true }).count()).toBeGreaterThan(0);
    }
    await shot('03-repositories');
    await page.getByLabel('Search').fill('win');
    await expect.poll(() => table.locator('tbody tr').count()).toBe(1);
    expect(page.url()).toContain('search=win');
    await page.getByLabel('Search').fill('');
    await page.getByLabel('Kind').selectOption('snapshot');
    await expect.poll(() => table.locator('tbody tr').count()).toBe(1);
    await page.getByLabel('Kind').selectOption('');
  });

  it('opens a deep link to a repository with a slash and copies a digest', async () => {
    await page.goto(`${t.url}/repositories/vm/live`);
    await page.getByRole('heading', { name: 'vm/live' }).waitFor();
    await page.getByRole('link', { name: 'hibernate', exact: true }).waitFor();
    const host = new URL(t.url).host;
    await page.getByText(`epoch pull ${host}/vm/live:`).first().waitFor();
    // Located by position: the button's name changes to "Copied" on click.
    const copy = page.locator('td.digest button').first();
    expect(await copy.textContent()).toBe('Copy digest');
    await copy.click();
    await expect.poll(() => copy.textContent()).toBe('Copied');
    const copied = await page.evaluate('navigator.clipboard.readText()');
    expect(copied).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect([digests.hibernate, digests.running]).toContain(copied);
    await shot('04-repository');
  });

  it('shows a snapshot tag: VM facts, files, layers, manifest — free text as text', async () => {
    await page.getByRole('link', { name: 'hibernate', exact: true }).click();
    await page.getByRole('heading', { name: 'vm/live:hibernate' }).waitFor();
    await page.getByText('cloud-hypervisor').waitFor();
    await page.getByText('4.0 GiB').first().waitFor();
    // The description is `<script>alert(1)</script>`: shown, never run or parsed.
    await page.getByText(XSS, { exact: true }).first().waitFor();
    expect(await page.locator('main script').count()).toBe(0);
    await page.getByText('memory-ranges').first().waitFor();
    await page.getByText('sparse', { exact: true }).waitFor();
    expect(await page.locator('.bar-fill').count()).toBe(2);
    expect(await page.locator('pre.manifest').textContent()).toContain(
      CocoonMediaTypes.snapshotArtifact,
    );
    await page.getByText(digests.hibernate ?? '', { exact: true }).waitFor();
    await shot('05-tag-snapshot');
  });

  it('shows a cloud image in parts in order, and an index with its platforms', async () => {
    await page.goto(`${t.url}/repositories/os/win11/-/latest`);
    await page.getByRole('heading', { name: 'Disk parts' }).waitFor();
    const parts = await page.locator('ol.parts li .name').allTextContents();
    expect(parts).toEqual([
      'win.qcow2.00.qcow2.part',
      'win.qcow2.01.qcow2.part',
      'win.qcow2.02.qcow2.part',
    ]);
    await shot('06-tag-cloud-image');
    await page.goto(`${t.url}/repositories/library/busybox/-/latest`);
    await page.getByRole('heading', { name: 'Platforms' }).waitFor();
    await page.getByText('linux/amd64', { exact: true }).waitFor();
    await page.getByText('linux/arm64/v8', { exact: true }).waitFor();
    await shot('07-tag-index');
  });

  it('cannot push a repository named like markup', async () => {
    const res = await api.fetch(
      `/v2/${encodeURIComponent('<img src=x onerror=alert(1)>')}/blobs/uploads/`,
      {
        method: 'POST',
      },
    );
    expect(res.status).toBe(400);
    const list = (await (await api.fetch('/api/repositories?search=img')).json()) as unknown[];
    expect(list).toEqual([]);
  });

  it('creates a token, shows its secret once, and revokes it; hostile names stay text', async () => {
    await nav.getByRole('link', { name: 'Tokens' }).click();
    await page.getByRole('heading', { name: 'Tokens', exact: true }).waitFor();
    const hostile = page.getByRole('cell', { name: XSS, exact: true });
    await hostile.waitFor();
    expect(await page.locator('main script').count()).toBe(0);

    await page.getByLabel('Name').fill('e2e-ci');
    await page.getByLabel('push').check();
    await page.getByLabel('Repository pattern').fill('library/*');
    await page.getByRole('button', { name: 'Create token' }).click();
    const secret = await page.getByTestId('token-secret').textContent();
    expect(secret).toMatch(/^\S{20,}$/);
    const created = (await t.server.index.listTokens()).find((x) => x.name === 'e2e-ci');
    expect(created).toMatchObject({ scopes: ['pull', 'push'], repoPattern: 'library/*' });
    expect(await t.server.index.findTokenByHash(hashToken(secret ?? ''))).toMatchObject({
      id: created?.id,
    });
    await shot('08-tokens-created');
    await page.getByRole('button', { name: 'Done' }).click();
    expect(await page.getByTestId('token-secret').count()).toBe(0);

    const row = page.locator(`tr[data-token-id="${created?.id}"]`);
    await row.getByRole('button', { name: 'Revoke…' }).click();
    await row.getByRole('button', { name: 'Revoke e2e-ci' }).click();
    await row.getByText('revoked').waitFor();
    expect((await t.server.index.findTokenById(created?.id ?? 0))?.revokedAt).toBeInstanceOf(Date);
  });

  it('deletes a tag after a confirm that names it', async () => {
    await page.goto(`${t.url}/repositories/library/alpine/-/old`);
    await page.getByRole('button', { name: 'Delete this tag…' }).click();
    const confirm = page.getByRole('alertdialog');
    expect(await confirm.textContent()).toContain('library/alpine:old');
    await confirm.getByRole('button', { name: 'Delete old' }).click();
    await page.getByRole('heading', { name: 'library/alpine' }).waitFor();
    await expect
      .poll(async () => (await t.server.index.getTag('library/alpine', 'old')) === undefined)
      .toBe(true);
    await expect.poll(() => page.getByRole('link', { name: 'old', exact: true }).count()).toBe(0);
    await page.getByRole('link', { name: '3.20', exact: true }).click();
    await page.getByRole('heading', { name: 'library/alpine:3.20' }).waitFor();
    await page.getByText('application/vnd.dev.cosign.artifact.sig.v1+json').waitFor();
    await shot('08b-tag-container-with-signature');
  });

  it('shows a push made while the page is open, without a reload', async () => {
    await nav.getByRole('link', { name: 'Repositories' }).click();
    await page.locator('table').getByRole('link', { name: 'vm/live', exact: true }).waitFor();
    await page.evaluate('window.stayed = true');
    await api.pushImage('live/arrived', 'v1');
    await page
      .locator('table')
      .getByRole('link', { name: 'live/arrived', exact: true })
      .waitFor({ timeout: 15_000 });
    expect(await page.evaluate('window.stayed')).toBe(true);
  });

  it('has an audit log and an about panel', async () => {
    await nav.getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
    await page.getByText('token.revoke').first().waitFor();
    await page.getByText('delete', { exact: true }).first().waitFor();
    await shot('09-audit');
    await nav.getByRole('link', { name: 'About' }).click();
    await page.getByText('Filesystem').waitFor();
    await page.getByText('SQLite').waitFor();
    await page.getByText('0.1.0').waitFor();
    await shot('10-about');
  });

  it('fits a 360 px wide screen', async () => {
    await page.setViewportSize({ width: 360, height: 740 });
    for (const path of [
      '/',
      '/repositories',
      '/repositories/vm/live',
      '/repositories/vm/live/-/hibernate',
    ]) {
      await page.goto(`${t.url}${path}`);
      await page.locator('main h1').waitFor();
      await page.waitForLoadState('networkidle');
      const overflow = await page.evaluate('document.documentElement.scrollWidth');
      expect(overflow, path).toBeLessThanOrEqual(360);
    }
    await shot('11-tag-360px');
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  it('signs out, showing the sign-in page again', async () => {
    await page.goto(`${t.url}/about`);
    await page.getByRole('link', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to Epoch' }).waitFor();
    await page.goto(`${t.url}/tokens`);
    await page.getByRole('heading', { name: 'Sign in to Epoch' }).waitFor();
  });

  it('ran no script from data, raised no dialog, and broke no CSP rule', () => {
    expect(dialogs).toEqual([]);
    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});

/**
 * The data the pages show: a snapshot (with hostile free text in its config), a cloud image in
 * parts, a container image pushed by skopeo and one with two tags, and a two-platform index.
 */
async function pushFixtures(
  t: TestServer,
  api: RawClient,
  admin: string,
  work: string,
  digests: Record<string, string>,
): Promise<void> {
  const put = async (
    name: string,
    tag: string,
    manifest: string,
    type: string = MediaTypes.ociManifest,
  ) => {
    const res = await api.fetch(`/v2/${name}/manifests/${tag}`, {
      method: 'PUT',
      headers: { 'Content-Type': type },
      body: manifest,
    });
    if (res.status !== 201)
      throw new Error(`push ${name}:${tag}: ${res.status} ${await res.text()}`);
    digests[tag] = digestOf(manifest);
  };

  // A snapshot.
  const config = JSON.stringify({
    schemaVersion: 'v1',
    snapshotId: 'snap-7',
    description: XSS,
    image: 'ghcr.io/cocoonstack/ubuntu:24.04',
    hypervisor: 'cloud-hypervisor',
    cpu: 4,
    memory: 4 * 1024 ** 3,
    storage: 20 * 1024 ** 3,
    nics: 1,
    files: {
      'memory-ranges': { mode: 384, sparseMap: '[{"o":0,"l":6000}]', sparseSize: 4 * 1024 ** 3 },
      'config.json': { mode: 420 },
    },
  });
  const layers: { mediaType: string; digest: string; size: number; annotations: object }[] = [];
  for (const [title, content, mediaType] of [
    ['config.json', '{"vm":true}', CocoonMediaTypes.vmConfig],
    ['memory-ranges', 'M'.repeat(6000), CocoonMediaTypes.vmMemory],
  ] as const) {
    layers.push({
      mediaType,
      digest: await api.pushBlob('vm/live', content),
      size: content.length,
      annotations: { 'org.opencontainers.image.title': title },
    });
  }
  const configDigest = await api.pushBlob('vm/live', config);
  const snapshot = (extra: object) =>
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      artifactType: CocoonMediaTypes.snapshotArtifact,
      config: {
        mediaType: CocoonMediaTypes.snapshotConfig,
        digest: configDigest,
        size: config.length,
      },
      layers,
      ...extra,
    });
  await put('vm/live', 'hibernate', snapshot({}));
  await put(
    'vm/live',
    'running',
    snapshot({ annotations: { 'org.opencontainers.image.description': XSS } }),
  );

  // A cloud image split in parts, pushed out of order.
  const parts = {
    'win.qcow2.01.qcow2.part': 'B'.repeat(3000),
    'win.qcow2.00.qcow2.part': 'A'.repeat(5000),
    'win.qcow2.02.qcow2.part': 'C'.repeat(1200),
  };
  const partLayers = [];
  for (const [title, content] of Object.entries(parts)) {
    partLayers.push({
      mediaType: CocoonMediaTypes.diskQcow2Part,
      digest: await api.pushBlob('os/win11', content),
      size: content.length,
      annotations: { 'org.opencontainers.image.title': title },
    });
  }
  await put(
    'os/win11',
    'latest',
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      artifactType: CocoonMediaTypes.osImageArtifact,
      config: {
        mediaType: MediaTypes.ociEmpty,
        digest: await api.pushBlob('os/win11', '{}'),
        size: 2,
      },
      layers: partLayers,
    }),
  );

  // Container images: two tags by hand, one pushed by skopeo.
  const alpine = await api.pushImage('library/alpine', '3.20', {
    layers: ['alpine rootfs '.repeat(400)],
  });
  digests['3.20'] = alpine.digest;
  await api.pushImage('library/alpine', 'old', { layers: ['older rootfs '.repeat(100)] });
  // A signature referring to 3.20, pushed by digest as signers do.
  const sig = JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
    config: {
      mediaType: MediaTypes.ociEmpty,
      digest: await api.pushBlob('library/alpine', '{}'),
      size: 2,
    },
    layers: [],
    subject: {
      mediaType: MediaTypes.ociManifest,
      digest: digests['3.20'],
      size: alpine.bytes.length,
    },
  });
  await put('library/alpine', digestOf(sig), sig);
  const src = join(work, 'layout');
  await writeImageLayout(src, 'v1', 256 * 1024);
  await exec('skopeo', [
    '--insecure-policy',
    'copy',
    '--preserve-digests',
    '--dest-tls-verify=false',
    '--dest-creds',
    `e2e:${admin}`,
    `oci:${src}:v1`,
    `docker://${new URL(t.url).host}/e2e/skopeo:v1`,
  ]).catch((err: { stderr?: string }) => {
    throw new Error(`skopeo push failed: ${err.stderr}`);
  });

  // A two-platform index over two child manifests.
  const children = [];
  for (const [arch, variant] of [
    ['amd64', undefined],
    ['arm64', 'v8'],
  ] as const) {
    const child = await api.pushImage('library/busybox', `child-${arch}`, {
      layers: [`busybox ${arch} `.repeat(arch === 'amd64' ? 300 : 200)],
    });
    children.push({
      mediaType: MediaTypes.ociManifest,
      digest: child.digest,
      size: Buffer.byteLength(child.bytes),
      platform: { os: 'linux', architecture: arch, ...(variant ? { variant } : {}) },
    });
  }
  await put(
    'library/busybox',
    'latest',
    JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: children }),
    MediaTypes.ociIndex,
  );
}
